"""Other engines as network paths: same eps as torch, graphs cached per model, the auto choice
weighs their set-up, the cache and torchrun's ranks keep the engine, one line without the extra."""

import json

import numpy as np
import pytest
import torch

from gsad.checkpoints import load_checkpoint
from gsad.enhance.enhancer import Enhancer
from gsad.errors import ConfigError, DependencyError
from gsad.network.inference_net import InferenceNet
from gsad.runtime import engines, fastpath
from gsad.runtime.fastpath import FastPath

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")
onnx = pytest.importorskip("onnx")

CPU = torch.device("cpu")
NO_BF16 = frozenset({"avx2"})


@pytest.fixture()
def model(busy_tiny_checkpoint):
    return load_checkpoint(busy_tiny_checkpoint)[0].eval()


@pytest.fixture()
def offer_engines(monkeypatch):
    """Let ``auto`` offer the installed engines (the suite's conftest runs torch only)."""
    monkeypatch.setenv("GSAD_ENGINE", "auto")
    monkeypatch.setattr(fastpath, "cpu_flags", lambda: NO_BF16)


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_engine_nets_match_torch_and_openvino_compiles_once_per_shape(model, tmp_path, engine):
    net = engines.engine_net(model, engine, "fp32", tmp_path / "onnx")
    reference = InferenceNet(model, "fp32")
    for shape in [(1, 6, 16, 24), (1, 6, 24, 16), (1, 6, 16, 24)]:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(shape[2])) * 2 - 1
        level = torch.tensor([0.7])
        with torch.inference_mode():
            expected = reference(x, level)[0]
        got, extra = net(x, level)
        assert extra is None and got.dtype == torch.float32 and got.shape == (1, 3, *shape[2:])
        assert (got - expected).abs().max() < 1e-4
    if engine == "openvino":
        assert sorted(net.compiled) == [(1, 6, 16, 24), (1, 6, 24, 16)]


def test_the_graph_is_exported_once_per_model_and_again_for_new_weights(model, tmp_path, monkeypatch):
    calls = []
    real = engines.export_onnx
    monkeypatch.setattr(engines, "export_onnx", lambda *a, **k: calls.append(1) or real(*a, **k))
    folder = tmp_path / "graphs"
    first = engines.onnx_file(model, folder)
    assert engines.onnx_file(model, folder) == first and len(calls) == 1
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    second = engines.onnx_file(model, folder)
    assert second != first and len(calls) == 2 and sorted(folder.iterdir()) == sorted([first, second])
    # a graph of another GroupNorm form is another file
    third = engines.onnx_file(model, folder, "channel-stats")
    assert third not in (first, second) and len(calls) == 3
    assert "InstanceNormalization" in {node.op_type for node in onnx.load(str(second)).graph.node}
    assert "InstanceNormalization" not in {node.op_type for node in onnx.load(str(third)).graph.node}


@pytest.mark.parametrize(("precision", "form"), [("fp32", "channel-stats"), ("bf16", "standard")])
def test_openvino_runs_the_channel_stats_graph_in_f32_only(model, tmp_path, precision, form):
    net = engines.engine_net(model, "openvino", precision, tmp_path)
    ops = {op.get_type_name() for op in net.graph.get_ops()}
    # the standard form normalises reshaped activations (MVN); the channel-stats form reduces them
    assert ("MVN" in ops) is (form == "standard") and ("ReduceMean" in ops) is (form == "channel-stats")
    assert engines.group_norm_form("onnxruntime", "fp32") == "standard"


def test_a_missing_engine_is_one_line_naming_the_extra(model, monkeypatch):
    monkeypatch.setattr(engines, "installed", lambda module: module != "openvino")
    assert engines.available_engines() == ("onnxruntime",)
    with pytest.raises(DependencyError, match=r'openvino engine needs its packages: pip install "gsad\[fast\]"'):
        fastpath.choose(model, CPU, "fp32", engine="openvino")
    monkeypatch.setattr(engines, "installed", lambda module: module != "onnx")
    assert engines.available_engines() == ()  # no graph without onnx


def test_requested_engines_and_their_precisions(model):
    assert fastpath.choose(model, CPU, "fp32", engine="onnxruntime").path == FastPath("fp32", False, False,
                                                                                      "onnxruntime")
    with pytest.raises(ConfigError, match="onnxruntime runs fp32, not bf16"):
        fastpath.choose(model, CPU, "bf16", engine="onnxruntime")
    with pytest.raises(ConfigError, match="unknown engine"):
        fastpath.choose(model, CPU, "fp32", engine="tensorrt")
    assert fastpath.choose(model, CPU, "fp32", engine="auto").path.engine == "torch"  # explicit precision: torch


def test_candidates_add_engines_only_where_offered_and_bf16_only_with_native_bf16():
    labels = lambda paths: [p.label for p in paths if p.engine != "torch"]  # noqa: E731
    assert labels(fastpath.candidates(CPU, flags=NO_BF16)) == []
    both = ("onnxruntime", "openvino")
    assert labels(fastpath.candidates(CPU, flags=NO_BF16, engines=both)) == ["onnxruntime fp32", "openvino fp32"]
    assert labels(fastpath.candidates(CPU, flags=frozenset({"avx512_bf16"}), engines=both))[-1] == "openvino bf16"
    assert labels(fastpath.candidates(CPU, winograd=True, flags=NO_BF16, engines=both)) == []  # a torch knob fixed


@pytest.mark.parametrize(("setup", "expected"), [
    (0.0, "onnxruntime fp32"),  # faster per forward, nothing to pay first
    (50.0, "fp32 Winograd NCHW"),  # its set-up costs more than a one-image run saves
])
def test_the_choice_weighs_set_up_against_a_one_image_run(model, offer_engines, monkeypatch, setup, expected):
    seconds = {"fp32 Winograd NCHW": 0.010, "fp32 NCHW": 0.012, "onnxruntime fp32": 0.006, "openvino fp32": 0.020}

    def fake_timing(model, cond, paths, budget=2.0, setup=None):
        setup_out = setup
        setup_out.update({p.label: 0.0 for p in paths if p.engine != "torch"})
        setup_out["onnxruntime fp32"] = setup_s
        return {p.label: seconds[p.label] for p in paths}

    setup_s = setup
    monkeypatch.setattr(fastpath, "timing", fake_timing)
    choice = fastpath.choose(model, CPU)
    assert choice.how == "probe" and choice.path.label == expected, choice.detail
    assert set(choice.levels) == {"fp32", "onnxruntime fp32", "openvino fp32"}  # each engine checked
    assert all(v <= 1e-2 for v in choice.levels.values())
    entry, = json.loads((fastpath.cache_dir() / fastpath.CACHE_FILE).read_text()).values()
    again = fastpath.choose(model, CPU)
    assert again.how == "cache" and again.path == choice.path
    if choice.path.engine != "torch":
        assert entry["path"]["engine"] == "onnxruntime" and entry["setup"]["onnxruntime fp32"] == setup


def test_an_engine_that_fails_the_fidelity_check_is_never_taken(model, offer_engines, monkeypatch):
    monkeypatch.setattr(fastpath, "fidelity",
                        lambda model, cond, checks: {"fp32": 0.0, **{fastpath.fidelity_key(c): 3.0 for c in checks}})
    monkeypatch.setattr(fastpath, "timing", lambda model, cond, paths, budget=2.0, setup=None: {p.label: 1.0
                        for p in paths})
    assert fastpath.choose(model, CPU).path.engine == "torch"


def test_enhance_on_each_engine_stays_within_a_level_of_fp32(busy_tiny_checkpoint, dark_image):
    reference = Enhancer(busy_tiny_checkpoint, precision="fp32", engine="torch").enhance(dark_image)
    for engine in ("onnxruntime", "openvino"):
        enhancer = Enhancer(busy_tiny_checkpoint, precision="fp32", engine=engine)
        assert enhancer.fast_path.describe() == f"{engine} fp32 (requested)"
        out = enhancer.enhance(dark_image)
        assert np.abs(out.astype(int) - reference).mean() <= 0.05, engine


def test_under_torchrun_every_rank_runs_the_engine_rank_0_chose(busy_tiny_checkpoint, offer_engines):
    from gsad.enhance.parallel import shared_enhancer
    from gsad.runtime.distributed import Context

    chosen = fastpath.Choice(FastPath("fp32", False, False, "onnxruntime"), "probe", "rank 0's probe")

    class Rank1(Context):
        def broadcast(self, obj):
            return (True, chosen)  # what on_main receives from rank 0

        def all_ok(self, ok):
            return ok

    enhancer = shared_enhancer(Rank1(rank=1, world_size=2), busy_tiny_checkpoint, "auto")
    assert enhancer.fast_path == chosen
    assert isinstance(enhancer.net, engines.OnnxRuntimeNet)


def test_a_damaged_cached_graph_is_exported_again(model, tmp_path):
    folder = tmp_path / "graphs"
    path = engines.onnx_file(model, folder)
    path.write_bytes(b"junk")  # a cache file damaged on disk
    net = engines.engine_net(model, "onnxruntime", "fp32", folder)
    x = torch.rand(1, 6, 16, 16) * 2 - 1
    with torch.inference_mode():
        expected = InferenceNet(model, "fp32")(x, torch.tensor([0.5]))[0]
    assert (net(x, torch.tensor([0.5]))[0] - expected).abs().max() < 1e-4
    assert path.read_bytes() != b"junk"


def test_an_engine_that_cannot_run_is_one_line_or_dropped_by_auto(model, offer_engines, monkeypatch):
    def broken(self, x, level):
        raise RuntimeError("Exception from src/plugin.cpp:12:\n[ GENERAL_ERROR ] no kernel for this CPU\n")

    monkeypatch.setattr(engines.OpenVinoNet, "run", broken)
    net = engines.engine_net(model, "openvino", "fp32", fastpath.cache_dir() / "onnx")
    with pytest.raises(DependencyError, match=r"^the openvino engine failed on a 1x6x16x16 input \(\[ GENERAL_ERROR \] "
                                              r"no kernel for this CPU\); --engine torch runs without it$"):
        net(torch.zeros(1, 6, 16, 16), torch.tensor([0.5]))
    monkeypatch.setattr(fastpath, "timing", lambda model, cond, paths, budget=2.0, setup=None: {
        p.label: (0.001 if p.engine == "openvino" else 1.0) for p in paths})
    choice = fastpath.choose(model, CPU)
    assert choice.path.engine != "openvino" and choice.levels["openvino fp32"] == float("inf")
