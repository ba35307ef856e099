"""`bench`: every part of the systems track against its baseline, in one JSON object.

`quick=true` runs every part at tiny shapes: it checks the wiring and the contract, not the
machine (benchmarks/systems/ and `bench` itself measure).
"""

import json

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.systems.bench import PARTS, flops_per_token
from {{ cookiecutter.package_name }}.systems.kv_bench import build_model

CONTRACT = ("tokens_per_s", "kv_cache_speedup", "int8_speedup", "int8_quality_delta")


def test_quick_bench_reports_the_contract_and_writes_a_report(tmp_path, capsys):
    args = ["bench", "--json", "--report", "--set", "quick=true", "--set", f"out={tmp_path}"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert all(isinstance(result[key], float) for key in CONTRACT), result
    assert result["kv_cache"]["same_tokens"]
    for part in PARTS:  # each part ran, or says why it could not
        assert part in result and result[part]["seconds"] >= 0
    assert result["train_mfu"] > 0 and result["decode_mfu"] > 0
    assert result["serving"]["errors"] == 0
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| KV-cache decode |" in report
    assert "![batching](batching.png)" in report and "![speed-ups](speedups.png)" in report
    assert (tmp_path / "batching.png").is_file() and (tmp_path / "speedups.png").is_file()


def test_bench_prints_one_table_and_runs_only_the_parts_asked(tmp_path, capsys):
    args = ["bench", "--set", "quick=true", "--set", "parts=[gemm, kv_cache]"]
    assert main([*args, "--set", f"out={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "peak matmul" in out and "KV-cache decode" in out and "int8" not in out


def test_an_unknown_part_is_a_clear_error(capsys):
    assert main(["bench", "--set", "parts=[kv_cache, warp_drive]"]) == 2
    assert "warp_drive" in capsys.readouterr().err


def test_flops_per_token_counts_the_weights_and_the_attention():
    model = build_model("2x128", 64, "cpu")
    weights = model.num_params()
    assert flops_per_token(model, 0, training=False) == 2 * weights
    assert flops_per_token(model, 10, training=True) == 3 * (2 * weights + 4 * 2 * 128 * 10)
