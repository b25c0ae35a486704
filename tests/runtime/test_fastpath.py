"""precision="auto": candidates from CPU flags, fidelity check, timing rule, per-machine cache."""

import json

import numpy as np
import pytest
import torch

from gsad.checkpoints import save_checkpoint, to_reference_state_dict
from gsad.cli import main
from gsad.config import PRESETS, NetworkConfig, SamplerConfig
from gsad.enhance.enhancer import Enhancer
from gsad.errors import ConfigError
from gsad.evaluation.evaluate import evaluation_precision
from gsad.network import UNet
from gsad.runtime import cpu, fastpath
from gsad.runtime.fastpath import FastPath

CPU = torch.device("cpu")
NO_BF16 = frozenset({"avx2"})
BF16 = frozenset({"avx2", "avx512f", "avx512_bf16"})


def _model(config=PRESETS["tiny"]):
    torch.manual_seed(0)
    model = UNet(config).eval()
    for p in model.parameters():  # away from the zero-ish init so the output depends on the weights
        p.data.add_(torch.randn_like(p) * 0.02)
    return model


@pytest.fixture()
def bf16_cpu(monkeypatch):
    """Pretend this CPU reports avx512_bf16 (bf16 still runs where it does not, only slower)."""
    monkeypatch.setattr(fastpath, "cpu_flags", lambda: BF16)
    monkeypatch.setattr(cpu, "cpu_flags", lambda: BF16)


def test_candidates_follow_cpu_flags(monkeypatch):
    monkeypatch.setattr(fastpath, "nnpack_available", lambda: True)
    plain = fastpath.candidates(CPU, flags=NO_BF16)
    assert [p.label for p in plain] == ["fp32 Winograd NCHW", "fp32 NCHW"]
    with_bf16 = fastpath.candidates(CPU, flags=BF16)
    assert [p.precision for p in with_bf16] == ["fp32", "fp32", "bf16"]
    assert fastpath.candidates(CPU, flags=frozenset({"amx_bf16"}))[-1] == FastPath("bf16", False, True)
    # a fixed knob narrows the fp32 candidates; Winograd never applies to bf16
    assert [p.label for p in fastpath.candidates(CPU, winograd=False, flags=BF16)] == ["fp32 NCHW",
                                                                                      "bf16 channels-last"]
    monkeypatch.setattr(fastpath, "nnpack_available", lambda: False)
    assert fastpath.candidates(CPU, flags=NO_BF16) == [FastPath("fp32", False, False)]


def test_explicit_precision_runs_as_asked():
    model = _model()
    choice = fastpath.choose(model, CPU, "fp32")
    assert choice.how == "requested" and choice.path == FastPath("fp32", True, False)
    assert fastpath.choose(model, CPU, "bf16", channels_last=True).path == FastPath("bf16", True, True)
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        fastpath.choose(model, CPU, "fp16")
    with pytest.raises(ConfigError, match="unknown precision 'fp8'.*auto, fp32, bf16, fp16"):
        fastpath.choose(model, CPU, "fp8")


def test_single_candidate_needs_no_probe(monkeypatch):
    monkeypatch.setattr(fastpath, "cpu_flags", lambda: NO_BF16)
    monkeypatch.setattr(cpu, "cpu_flags", lambda: NO_BF16)
    monkeypatch.setattr(fastpath, "nnpack_available", lambda: False)
    monkeypatch.setattr(fastpath, "probe", lambda *a: pytest.fail("probed with one candidate"))
    choice = fastpath.choose(_model(), CPU)
    assert choice.how == "hardware" and choice.path == FastPath("fp32", False, False)


def test_bf16_cpu_takes_bf16_within_tolerance(bf16_cpu):
    choice = fastpath.choose(_model(), CPU)
    assert choice.how == "hardware" and choice.path == FastPath("bf16", False, True)
    assert 0 < choice.levels["bf16"] <= fastpath.TOLERANCE_LEVELS
    assert "avx512_bf16" in choice.describe() and "levels of 255" in choice.describe()


def test_precision_beyond_tolerance_is_refused(bf16_cpu, monkeypatch):
    monkeypatch.setattr(fastpath, "TOLERANCE_LEVELS", 1e-6)  # bf16 cannot meet it
    monkeypatch.setattr(fastpath, "timing", lambda model, cond, paths, setup=None: {p.label: 1.0 for p in paths})
    choice = fastpath.choose(_model(), CPU)
    assert choice.path.precision == "fp32" and choice.levels["bf16"] > 1e-6


@pytest.mark.parametrize(("bf16_seconds", "expected"), [(0.5, "bf16"), (0.95, "fp32")])
def test_timing_rule_needs_a_real_gain(bf16_cpu, monkeypatch, bf16_seconds, expected):
    """Where the hardware does not settle it, the fastest path wins, a lower precision only by MIN_GAIN."""
    monkeypatch.setattr(fastpath, "hardware_choice", lambda device, paths: None)
    monkeypatch.setattr(fastpath, "nnpack_available", lambda: True)
    seconds = {"fp32 Winograd NCHW": 1.2, "fp32 NCHW": 1.0, "bf16 channels-last": bf16_seconds}
    monkeypatch.setattr(fastpath, "timing",
                        lambda model, cond, paths, setup=None: {p.label: seconds[p.label] for p in paths})
    choice = fastpath.choose(_model(), CPU)
    assert choice.how == "probe" and choice.path.precision == expected
    if expected == "fp32":
        assert choice.path.label == "fp32 NCHW"  # the faster fp32 candidate


def test_timing_measures_every_path_and_the_probe_takes_the_fastest(monkeypatch):
    """A real probe of the fp32 candidates (real forwards, shortest timing budget)."""
    monkeypatch.setattr(fastpath, "cpu_flags", lambda: NO_BF16)
    monkeypatch.setattr(cpu, "cpu_flags", lambda: NO_BF16)
    real_timing = fastpath.timing
    monkeypatch.setattr(fastpath, "timing", lambda model, cond, paths, setup=None: real_timing(
        model, cond, paths, budget=0.0, setup=setup))
    paths = [FastPath("fp32", True, False), FastPath("fp32", False, False)]
    choice = fastpath.probe(_model(), CPU, paths)
    assert choice.how == "probe" and choice.levels == {}  # fp32 only: no fidelity check to run
    assert list(choice.seconds) == [p.label for p in paths]  # one entry per candidate, in order
    # finite: every path was timed (an untimed one stays at its initial inf); positive: a real forward
    assert all(np.isfinite(s) and s > 0 for s in choice.seconds.values()), choice.seconds
    # all fp32, so all within tolerance: the rule takes the fastest of them
    assert choice.path in paths and choice.path.label == min(choice.seconds, key=choice.seconds.get)
    assert "s/forward at 128x128" in choice.detail


# Fake forwards on a fake clock: warm-up first (much faster than any timed round for bf16,
# so counting it would show), then one duration per round.
_FAKE_DURATIONS = {
    "fp32 Winograd NCHW": [100.0, 3.0, 2.0, 4.0, 1.0, 5.0],
    "fp32 NCHW": [100.0, 2.0, 2.5, 3.0, 3.0, 0.5],
    "bf16 channels-last": [0.01, 1.5, 1.0, 0.9, 0.8, 0.7],
}


@pytest.mark.parametrize(("budget", "rounds"), [(0.0, 2), (13.0, 3), (1e9, 5)])
def test_timing_is_the_fastest_of_interleaved_rounds_after_a_warm_up(monkeypatch, budget, rounds):
    """At least 2 rounds, at most 5, none started after ``budget`` s; each path's time is its
    fastest timed forward (never the warm-up); rounds alternate the order of the paths."""
    clock, calls = [0.0], []

    class FakeNet:
        def __init__(self, model, precision, channels_last=False, winograd=False):
            self.label = FastPath(precision, winograd, channels_last).label
            self.durations = iter(_FAKE_DURATIONS[self.label])

        def precompute(self, level):
            pass

        def __call__(self, x, level):
            calls.append(self.label)
            clock[0] += next(self.durations)

    monkeypatch.setattr(fastpath, "InferenceNet", FakeNet)
    monkeypatch.setattr(fastpath, "time", type("FakeTime", (), {"perf_counter": staticmethod(lambda: clock[0])}))
    paths = [FastPath("fp32", True, False), FastPath("fp32", False, False), FastPath("bf16", False, True)]
    labels = [p.label for p in paths]
    seconds = fastpath.timing(_model(), torch.zeros(1, 3, 16, 16), paths, budget=budget)
    assert seconds == pytest.approx({label: min(_FAKE_DURATIONS[label][1 : 1 + rounds]) for label in labels})
    expected_calls = list(labels)  # the warm-ups
    for round_ in range(rounds):
        expected_calls += labels if round_ % 2 == 0 else labels[::-1]
    assert calls == expected_calls



def test_probe_is_cached_per_machine_and_shape(bf16_cpu, monkeypatch, tmp_path):
    monkeypatch.setenv("GSAD_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    real = fastpath.probe
    monkeypatch.setattr(fastpath, "probe", lambda *a: calls.append(1) or real(*a))
    first = fastpath.choose(_model(), CPU)
    again = fastpath.choose(_model(), CPU)
    assert len(calls) == 1 and again.how == "cache" and again.path == first.path
    data = json.loads((tmp_path / "cache" / fastpath.CACHE_FILE).read_text())
    (entry,) = data.values()
    assert entry["path"] == {"precision": "bf16", "winograd": False, "channels_last": True}
    assert entry["machine"]["flags"] == sorted(BF16) and entry["machine"]["threads"] == torch.get_num_threads()
    other = NetworkConfig(base_channels=16, channel_mults=(1, 2), res_blocks=1, attn_levels=(), norm_groups=8)
    fastpath.choose(_model(other), CPU)  # another shape: probed again, kept beside the first
    assert len(calls) == 2 and len(json.loads((tmp_path / "cache" / fastpath.CACHE_FILE).read_text())) == 2
    monkeypatch.setattr(fastpath, "cpu_flags", lambda: frozenset(BF16 | {"amx_bf16"}))  # another machine
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(BF16 | {"amx_bf16"}))
    fastpath.choose(_model(), CPU)
    assert len(calls) == 3


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv("GSAD_CACHE_DIR", str(tmp_path / "mine"))
    assert fastpath.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("GSAD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fastpath.cache_dir() == tmp_path / "xdg" / "gsad"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert fastpath.cache_dir() == tmp_path / "home" / ".cache" / "gsad"


def test_broken_or_unwritable_cache_falls_back_to_probing(bf16_cpu, monkeypatch, tmp_path, caplog):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / fastpath.CACHE_FILE).write_text("{not json")
    monkeypatch.setenv("GSAD_CACHE_DIR", str(cache))
    assert fastpath.choose(_model(), CPU).how == "hardware"
    assert caplog.text.count("unreadable fast-path cache") == 1  # once, not again on the re-read
    assert len(json.loads((cache / fastpath.CACHE_FILE).read_text())) == 1  # rewritten whole
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("GSAD_CACHE_DIR", str(blocker / "sub"))  # cannot be created
    assert fastpath.choose(_model(), CPU).path.precision == "bf16"
    assert "cannot write the fast-path cache" in caplog.text


def test_probe_leaves_fp32_runs_and_global_state_unchanged(bf16_cpu):
    model = _model()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    low = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(3)) * 0.6 - 1
    settings = SamplerConfig(steps=2, beta_start=2e-3, beta_end=0.9, seed=5)
    before = Enhancer.from_model(model, settings, "cpu", precision="fp32").enhance_tensor(low, settings)
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    auto = Enhancer.from_model(model, settings, "cpu")  # runs the probe
    assert auto.fast_path.how == "hardware"
    assert torch.equal(torch.get_rng_state(), rng) and torch.get_num_threads() == threads
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    after = Enhancer.from_model(model, settings, "cpu", precision="fp32").enhance_tensor(low, settings)
    assert torch.equal(before, after)
    fast = auto.enhance_tensor(low, settings)
    assert 0 < (fast - before).abs().mean().item() * 127.5 <= fastpath.TOLERANCE_LEVELS


def test_enhancer_default_is_auto(monkeypatch):
    monkeypatch.setattr(fastpath, "cpu_flags", lambda: NO_BF16)
    monkeypatch.setattr(cpu, "cpu_flags", lambda: NO_BF16)
    enhancer = Enhancer.from_model(_model(), device="cpu")
    assert enhancer.fast_path.how in ("probe", "hardware") and enhancer.fast_path.path.precision == "fp32"
    assert enhancer.net.precision == "fp32" and enhancer.net.winograd == enhancer.fast_path.path.winograd


def test_cli_verbose_names_the_path(tiny_checkpoint, tmp_path, dark_image, capsys, bf16_cpu):
    from PIL import Image

    src = tmp_path / "dark.png"
    Image.fromarray(dark_image).save(src)
    assert main(["enhance", str(src), "-o", str(tmp_path / "a.png"), "--checkpoint", str(tiny_checkpoint),
                 "--device", "cpu", "--verbose"]) == 0
    assert "gsad: network: bf16 channels-last (hardware: avx512_bf16" in capsys.readouterr().err
    assert main(["enhance", str(src), "-o", str(tmp_path / "b.png"), "--checkpoint", str(tiny_checkpoint),
                 "--device", "cpu", "--precision", "fp32", "-v"]) == 0
    assert "gsad: network: fp32 Winograd NCHW (requested)" in capsys.readouterr().err
    a, b = (np.asarray(Image.open(tmp_path / n)).astype(int) for n in ("a.png", "b.png"))
    assert np.abs(a - b).mean() <= fastpath.TOLERANCE_LEVELS


def test_evaluate_keeps_fp32_for_reference_checkpoints(tiny_checkpoint, tmp_path):
    model = _model()
    pth = tmp_path / "ref.pth"
    torch.save(to_reference_state_dict(model), pth)
    assert evaluation_precision("auto", pth) == "fp32"
    assert evaluation_precision("bf16", pth) == "bf16"
    assert evaluation_precision("auto", tiny_checkpoint) == "auto"
    save_checkpoint(tmp_path / "run.safetensors", model, SamplerConfig())
    assert evaluation_precision("auto", tmp_path / "run.safetensors") == "auto"
