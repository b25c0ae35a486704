"""``gsad export``: a checked, self-describing ONNX file, written whole or not at all."""

import json

import pytest

from gsad.cli import main
from gsad.config import SamplerConfig

ort = pytest.importorskip("onnxruntime")
onnx_export = pytest.importorskip("gsad.network.onnx_export")


def _props(path):
    return ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map


def test_export_checks_the_graph_and_stores_the_sampler_defaults(busy_tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(busy_tiny_checkpoint), str(out), "--steps", "5", "--opset", "17"]) == 0
    said = capsys.readouterr().out
    assert "opset 17; ONNX Runtime matches torch within" in said
    sampler = SamplerConfig(**json.loads(_props(out)["gsad.sampler"]))
    assert sampler.steps == 5 and sampler.start == "soft-exposure" and sampler.ensemble == 3  # the rest: checkpoint's
    assert _props(out)["gsad.source"] == busy_tiny_checkpoint.name


def test_group_norm_picks_the_graph_s_form_and_the_check_still_passes(busy_tiny_checkpoint, tmp_path, capsys):
    # the CLI offers the forms export_onnx takes, and only those
    assert main(["export", str(busy_tiny_checkpoint), str(tmp_path / "x.onnx"), "--group-norm", "fused"]) == 2
    assert f"(choose from {', '.join(map(repr, onnx_export.GROUP_NORMS))})" in capsys.readouterr().err
    onnx = pytest.importorskip("onnx")
    for form, norm_op in (("standard", True), ("channel-stats", False)):
        out = tmp_path / f"{form}.onnx"
        assert main(["export", str(busy_tiny_checkpoint), str(out), "--group-norm", form]) == 0
        assert "ONNX Runtime matches torch within" in capsys.readouterr().out
        ops = {node.op_type for node in onnx.load(str(out)).graph.node}
        assert ("InstanceNormalization" in ops) is norm_op


def test_a_reference_checkpoint_exports_too(reference_dir, tmp_path):
    assert main(["export", str(reference_dir / "gen.pth"), str(tmp_path / "ref.onnx")]) == 0
    assert json.loads(_props(tmp_path / "ref.onnx")["gsad.network"])["in_channels"] == 6


def test_existing_outputs_and_other_suffixes_are_refused(busy_tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"mine")
    assert main(["export", str(busy_tiny_checkpoint), str(out)]) == 1
    assert main(["export", str(busy_tiny_checkpoint), str(tmp_path / "m.onnx.txt")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gsad: error: {out}: output exists (use --overwrite to replace it)",
                   f"gsad: error: {tmp_path / 'm.onnx.txt'}: the output must be an .onnx file"]
    assert out.read_bytes() == b"mine"


def test_a_graph_that_fails_the_check_is_not_written(busy_tiny_checkpoint, tmp_path, capsys, monkeypatch):
    from gsad.cli import export

    monkeypatch.setattr(export, "CHECK_TOLERANCE", 0.0)  # float rounding alone now fails it
    out = tmp_path / "out" / "m.onnx"
    assert main(["export", str(busy_tiny_checkpoint), str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"gsad: error: {out}: ONNX Runtime's eps differs from torch's by ") and "\n" not in err
    assert not out.exists() and list(out.parent.iterdir()) == []  # no temporary left either


def test_without_onnxruntime_the_export_says_it_is_unchecked(busy_tiny_checkpoint, tmp_path, capsys, monkeypatch):
    from gsad.runtime import engines

    monkeypatch.setattr(engines, "installed", lambda module: module != "onnxruntime")
    assert main(["export", str(busy_tiny_checkpoint), str(tmp_path / "m.onnx")]) == 0
    assert "not checked: pip install onnxruntime" in capsys.readouterr().out
