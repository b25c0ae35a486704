"""Where ``gsad enhance`` writes: every (input, output) pair planned and checked before any work."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from gsad.checkpoints import resolve_checkpoint
from gsad.errors import InputError
from gsad.files import OutputPlan, check_folder
from gsad.imaging.io import is_output_image_file, list_images


def plan_outputs(
    inputs: Sequence[str],
    output: str,
    overwrite: bool,
    report: Callable[[str], None],
    checkpoint: str | None = None,
    fmt: str = "png",
) -> list[tuple[Path, Path]]:
    """(source, destination) pairs for ``gsad enhance``, every destination checked before any work.

    Problems are reported and the image skipped: a destination that is one of the run's inputs
    (any input image, or the checkpoint; after resolving links and case) is refused even with
    ``overwrite``, as is a destination two inputs map to; an existing one needs ``overwrite``;
    an output folder that cannot be made or written refuses the whole run. A folder output keeps
    each input's name with the suffix ``fmt`` (``--format``).
    """
    sources: list[Path] = []
    folder_input = False
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            folder_input = True
            found = list_images(path)
            if not found:
                report(f"{path}: folder holds no image files")
            sources.extend(found)
        elif path.exists():
            sources.append(path)
        else:
            report(f"{path}: no such file or folder")
    out = Path(output)
    to_folder = folder_input or len(inputs) > 1 or out.is_dir() or output.endswith(("/", os.sep))
    if to_folder and out.exists() and not out.is_dir():
        report(f"{out}: exists and is not a folder; several images or a folder input need an output folder")
        return []
    if not to_folder and not is_output_image_file(out):
        report(f"{out}: unknown output image format {out.suffix or '(no suffix)'!r}; name a .png/.jpg file or a folder")
        return []
    if to_folder and sources:
        try:
            check_folder(out)
        except InputError as exc:
            report(str(exc))
            return []
    run_inputs = list(sources)
    if checkpoint is not None:
        run_inputs.append(resolve_checkpoint(checkpoint))
    outputs = OutputPlan(run_inputs)
    plan: list[tuple[Path, Path]] = []
    for src in sources:
        dst = out / f"{src.stem}.{fmt}" if to_folder else out
        try:
            plan.append((src, outputs.check(dst, overwrite, source=src)))
        except InputError as exc:
            report(str(exc))
    return plan
