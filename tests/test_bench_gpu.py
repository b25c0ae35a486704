"""benchmarks/bench_gpu.py --dry-run: the GPU benchmark's code runs on the CPU, every row."""

import importlib.util
import json
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"


def test_gpu_benchmark_dry_run(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        assert bench.main(["--dry-run", "--steps", "1", "--repeats", "1", "--json", str(tmp_path / "r.json")]) == 0
    finally:
        torch._dynamo.reset()
    out = capsys.readouterr().out
    assert "machine: torch" in out and "dry run: all 8 configurations ran" in out
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert {(r["mode"], r["compile"]) for r in rows} == {(m, c) for m in ("fp32", "tf32", "bf16", "auto")
                                                         for c in (False, True)}
    fp32 = [r for r in rows if r["mode"] in ("fp32", "tf32")]
    assert all(r["mean_levels"] < 1e-3 for r in fp32)  # TF32 is a no-op on the CPU; compile changes nothing
    assert all(r["s_per_image"] > 0 for r in rows)
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == flags  # TF32 mode restored
