"""``gsad tune-schedule`` never writes into the bundled model."""

from __future__ import annotations

from gsad.checkpoints import default_checkpoint
from gsad.cli import main


def test_the_bundled_model_is_tuned_only_into_another_file(tmp_path, capsys):
    before = default_checkpoint().read_bytes()
    assert main(["tune-schedule", "--checkpoint", "default", "--data", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        "gsad: error: --checkpoint default: the bundled model is never changed; "
        "write the tuned model elsewhere with --output OUT.safetensors\n"
    )
    assert default_checkpoint().read_bytes() == before
