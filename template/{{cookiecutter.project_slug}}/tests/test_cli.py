import json
import subprocess
import sys

from {{ cookiecutter.package_name }}.cli import build_parser, main
from {{ cookiecutter.package_name }}.tracking import read_metrics

from .conftest import PACKAGE, PROJECT_ROOT, small_overrides


def test_doctor_json_subprocess():
    out = subprocess.run(
        [sys.executable, "-m", PACKAGE, "doctor", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
    )
    info = json.loads(out.stdout)
    for key in ("device", "dtype", "torch", "python", "threads", "memory_gb"):
        assert key in info


def test_help_does_not_import_torch():
    code = f"import sys, {PACKAGE}.cli as cli; cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_parser_is_extensible():
    parser = build_parser()
    assert {"doctor", "train", "report"} <= set(parser._subparsers._group_actions[0].choices)


def test_train_end_to_end_and_report(tmp_path, capsys):
    args = [
        "train",
        "--config",
        str(PROJECT_ROOT / "configs" / "tiny.yaml"),
        "--runs-dir",
        str(tmp_path),
    ]
    for item in small_overrides(**{"train.max_steps": 20, "train.eval_interval": 10}):
        args += ["--set", item]
    assert main(args) == 0
    run_dir = tmp_path / capsys.readouterr().out.strip().splitlines()[-1].split("/")[-1]
    assert run_dir.name.startswith("tiny-")
    for name in ("config.yaml", "metrics.jsonl", "report.md", "loss.png", "summary.json"):
        assert (run_dir / name).is_file()
    assert any("eval/loss" in r for r in read_metrics(run_dir))
    assert list((run_dir / "checkpoints").glob("step_*.pt"))

    (run_dir / "report.md").unlink()
    (run_dir / "loss.png").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.md").is_file() and (run_dir / "loss.png").is_file()


def test_user_errors_exit_2_without_traceback(tmp_path, capsys):
    assert main(["train", "--set", "train.nope=1", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'train.nope'" in err and "Traceback" not in err
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert main(["report", str(tmp_path)]) == 2
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_config_show_lists_every_key_with_its_meaning(capsys):
    from {{ cookiecutter.package_name }}.config import Config, describe

    assert main(["config", "show", "--json"]) == 0
    sections = json.loads(capsys.readouterr().out)
    training = {row["key"]: row for row in sections[0]["keys"]}
    assert {key for key, *_ in describe(Config)} == set(training)
    assert {"train.max_steps", "train.seed", "model.n_layer", "data.kind"} <= set(training)
    assert all(row["help"] for row in training.values()), "every key needs a description"
    assert training["train.lr"]["type"] == "float" and training["train.lr"]["default"] == 1e-3
    assert "bfloat16" in training["train.dtype"]["help"]

    assert main(["config", "show", "--config", str(PROJECT_ROOT / "configs" / "tiny.yaml")]) == 0
    text = capsys.readouterr().out
    assert "train.max_steps" in text and "AI_DEVICE" in text


def test_every_command_group_is_found():
    import importlib.util

    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)
    assert {"doctor", "train", "report", "config", "labs"} <= commands
    for name in ("rag", "demo", "theory", "applied", "systems"):
        present = importlib.util.find_spec(f"{PACKAGE}.{name}") is not None
        assert (name in commands) == present, name


def test_output_into_a_closed_pipe_is_not_a_traceback(monkeypatch):
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` after it has read what it wanted
    with os.fdopen(write_end, "w") as closed_pipe:
        monkeypatch.setattr(sys, "stdout", closed_pipe)
        assert main(["config", "show"]) == 1  # no BrokenPipeError traceback
