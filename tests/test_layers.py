"""The package's layers import only downward (docs/ARCHITECTURE.md): a module may import its own
layer and the layers below it, never one above, lazily inside a function or not."""

from __future__ import annotations

import ast
from pathlib import Path

import gsad

PACKAGE = Path(gsad.__file__).parent

#: Each top-level module or folder of src/gsad and its height: a layer imports only layers of its
#: height or lower.
LAYERS = {
    "errors": 0, "config": 0, "files": 0,
    "imaging": 1,
    "network": 2, "data": 2,
    "diffusion": 3, "checkpoints": 3,
    "losses": 4, "runtime": 4,
    "enhance": 5,
    "evaluation": 6,
    "training": 7,
    "cli": 8, "demo": 8, "__init__": 8, "__main__": 8,
}


def _layer(module: str) -> str:
    """``gsad.enhance.video`` -> ``enhance``; ``gsad`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported_layers(path: Path) -> set[str]:
    """The gsad layers a source file imports (every ``import``/``from`` statement, at any depth)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "gsad":
            found.add(_layer(node.module))
        elif isinstance(node, ast.Import):
            found.update(_layer(a.name) for a in node.names if a.name.split(".")[0] == "gsad")
    return found


def test_every_module_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
            if (p.suffix == ".py") or (p.is_dir() and (p / "__init__.py").is_file())}
    assert tops == set(LAYERS)


def test_no_layer_imports_upward():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        own = relative.stem if len(relative.parts) == 1 else relative.parts[0]
        upward += [f"{relative} imports gsad.{layer}" for layer in imported_layers(path)
                   if LAYERS[layer] > LAYERS[own]]
    assert upward == []


def test_an_upward_import_is_found(tmp_path):
    """The check sees a lazy import inside a function (the form an upward import usually takes)."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from gsad.enhance.enhancer import Enhancer\n    import gsad.cli\n")
    assert imported_layers(source) == {"enhance", "cli"}
