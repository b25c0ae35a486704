"""gsad without its evaluation packages (issue 13): start-up, every --help and enhancing work; a
command that needs scikit-image says so in one line naming the pip command."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from gsad.cli import COMMANDS

#: Run gsad's CLI in a fresh interpreter where scikit-image and scipy cannot be imported.
_BLOCKED = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("skimage", "scipy"):
            raise ImportError(f"No module named {name!r} (blocked by the test)")
sys.meta_path.insert(0, Block())
import json
from gsad.cli import main
runs = json.loads(sys.argv[1]) if sys.argv[1].startswith("[") else [sys.argv[1:]]
code = max(main(argv) for argv in runs)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("skimage", "scipy"))
print("LOADED", loaded, file=sys.stderr)
sys.exit(code)
"""


def _gsad(*argv):
    return subprocess.run([sys.executable, "-c", _BLOCKED, *map(str, argv)], capture_output=True, text=True,
                          timeout=300)


def test_help_of_every_command_works_without_scikit_image_or_scipy():
    helps = [["--help"], *([name, "--help"] for name in COMMANDS)]
    run = _gsad(json.dumps(helps))
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("usage: gsad") == len(helps)
    assert {"enhance", "convert", "train", "synthesize", "tune-schedule", "evaluate", "demo"} <= set(COMMANDS)
    for name in COMMANDS:
        assert f"usage: gsad {name}" in run.stdout
    assert "LOADED []" in run.stderr


def test_enhance_works_and_evaluate_names_the_extra(tiny_checkpoint, tmp_path):
    img = np.full((20, 28, 3), 30, np.uint8)
    for side in ("low", "high"):
        (tmp_path / side).mkdir()
        Image.fromarray(img).save(tmp_path / side / "a.png")
    run = _gsad("enhance", tmp_path / "low" / "a.png", "-o", tmp_path / "o.png", "--checkpoint", tiny_checkpoint)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "o.png").is_file()
    run = _gsad("evaluate", "--data", tmp_path, "--predictions", tmp_path / "low", "--csv", tmp_path / "r.csv")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.splitlines()[0] == (
        "gsad: error: SSIM needs scikit-image, which is not importable here (No module named 'skimage' (blocked by "
        "the test)); install it with: pip install \"gsad[eval]\""
    )
    assert not (tmp_path / "r.csv").exists()
