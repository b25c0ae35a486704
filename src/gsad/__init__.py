"""gsad: low-light image enhancement with a global structure-aware diffusion process.

    >>> from gsad import Enhancer
    >>> out = Enhancer().enhance(dark_uint8_array)   # doctest: +SKIP

Importing gsad does no work: models load when an :class:`Enhancer` is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from gsad.enhance.enhancer import Enhancer


def __getattr__(name: str):
    if name == "Enhancer":
        from gsad.enhance.enhancer import Enhancer

        return Enhancer
    raise AttributeError(f"module 'gsad' has no attribute {name!r}")


__all__ = ["Enhancer", "__version__"]
