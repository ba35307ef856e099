"""Hostile-but-fair input to training, resuming and reports: a clear error, nothing lost.

Each case comes from a probe a new user ran against a fresh project (bad numbers, damaged run
folders, two processes on one run, data that changed or is not text).
"""

import json
import logging
import os
import shutil
import subprocess
import sys

import pytest

from {{ cookiecutter.package_name }}.checkpoint import list_checkpoints, load_checkpoint
from {{ cookiecutter.package_name }}.config import ConfigError, load_config
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.report import write_report
from {{ cookiecutter.package_name }}.runlock import LOCK_FILE, RunLock, RunLocked
from {{ cookiecutter.package_name }}.runs import _create_run_dir
from {{ cookiecutter.package_name }}.tracking import read_metrics
from {{ cookiecutter.package_name }}.train import TrainingDiverged, run

from .conftest import PACKAGE, PROJECT_ROOT, small_overrides


def strict_json(line: str) -> dict:
    def refuse(token: str) -> None:
        raise ValueError(f"bare {token} is not JSON")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A short finished run (20 steps, checkpoints at 10 and 20)."""
    runs = tmp_path_factory.mktemp("runs")
    overrides = small_overrides(**{"train.max_steps": 20, "name": "done"})
    return run(overrides=overrides, runs_dir=runs)


def copy_run(src, tmp_path, name="copy"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.beta1=2", "train.beta1 must be in [0, 1)"),
        ("train.beta2=-0.1", "train.beta2 must be in [0, 1)"),
        ("train.lr=nan", "expected a finite number"),
        ("train.lr=inf", "expected a finite number"),
        ("train.min_lr=-1", "train.min_lr must be in [0, train.lr"),
        ("train.min_lr=1", "train.min_lr must be in [0, train.lr"),
        ("train.weight_decay=-1", "train.weight_decay must be >= 0"),
        ("train.grad_clip=-1", "train.grad_clip must be >= 0"),
        ("train.warmup_steps=-3", "train.warmup_steps must be >= 0"),
        ("train.seed=-1", "train.seed must be in"),
        ("model.dropout=nan", "expected a finite number"),
        ("data.val_fraction=1", "data.val_fraction must be in (0, 1)"),
        ("model.vocab_size=-2", "model.vocab_size must be >= 0"),
        ("name=../elsewhere", "plain folder name"),
    ],
)
def test_numbers_that_make_no_sense_are_refused(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert message in str(err.value)


def test_config_path_that_is_a_folder(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_non_finite_loss_stops_after_the_last_good_checkpoint(tmp_path):
    # A finite but absurd learning rate drives the weights to inf within a few steps.
    overrides = small_overrides(
        **{
            "train.lr": 1e30,
            "train.min_lr": 0,
            "train.warmup_steps": 0,
            "train.grad_clip": 0,
            "train.log_interval": 1,
            "train.checkpoint_interval": 1,
            "name": "boom",
        }
    )
    with pytest.raises(TrainingDiverged, match="NaN or infinite") as err:
        run(overrides=overrides, runs_dir=tmp_path)
    assert "Checkpoints up to step" in str(err.value)
    run_dir = tmp_path / "boom"
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        strict_json(line)  # never a bare NaN / Infinity
    good = list_checkpoints(run_dir)
    assert good, "the steps before the divergence were checkpointed"
    state = load_checkpoint(good[-1])
    assert all(t.isfinite().all() for t in state["model"].values())
    assert not (run_dir / LOCK_FILE).exists()


# ----------------------------------------------------------------------------- data


def test_a_binary_or_latin1_data_file_is_refused(tmp_path):
    binary = tmp_path / "random.bin"
    binary.write_bytes(os.urandom(5000) + b"\x00")
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("café naïve élève ".encode("latin-1") * 50)
    for path, reason in ((binary, "binary file"), (latin, "not UTF-8")):
        with pytest.raises(UserError, match=reason):
            run(overrides=small_overrides(**{"data.path": path}), runs_dir=tmp_path / "runs")


def test_a_folder_with_a_binary_file_skips_it_once(tmp_path, caplog):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.md").write_text((PROJECT_ROOT / "docs" / "training.md").read_text())
    (corpus / "fake.md").write_bytes(b"\x00\x01binary" * 100)
    overrides = small_overrides(**{"data.path": corpus, "train.max_steps": 2, "name": "skip"})
    with caplog.at_level(logging.WARNING):
        run_dir = run(overrides=overrides, runs_dir=tmp_path / "runs")
    skipped = [r for r in caplog.records if "fake.md" in r.getMessage()]
    assert len(skipped) == 1 and "binary" in skipped[0].getMessage()
    assert "1 of 2 files skipped" in caplog.text
    vocab = load_checkpoint(list_checkpoints(run_dir)[-1])["task"]["codec"]["chars"]
    assert "\ufffd" not in vocab and "\x00" not in vocab


def test_resume_keeps_the_saved_vocabulary_and_reports_changed_data(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = (PROJECT_ROOT / "docs" / "training.md").read_text()
    (corpus / "a.md").write_text(text)
    overrides = small_overrides(
        **{"data.path": corpus, "train.max_steps": 20, "train.checkpoint_interval": 10}
    )
    run_dir = run(overrides=[*overrides, "name=vocab"], runs_dir=tmp_path)
    saved = load_checkpoint(list_checkpoints(run_dir)[-1])["task"]["codec"]["chars"]
    list_checkpoints(run_dir)[-1].unlink()  # back to step 10
    (corpus / "a.md").write_text(text.replace("!", "Ω") + "\nZ")  # same size, other characters
    capsys.readouterr()
    run(resume=run_dir)
    assert "training data changed" in capsys.readouterr().err
    assert load_checkpoint(list_checkpoints(run_dir)[-1])["task"]["codec"]["chars"] == saved


# ----------------------------------------------------------------------------- resume


def test_resuming_a_finished_run_changes_nothing(finished):
    before = {p.name: p.read_bytes() for p in finished.iterdir() if p.is_file()}
    with pytest.raises(UserError, match="already finished at step 20") as err:
        run(resume=finished)
    assert "--set train.max_steps=40" in str(err.value)
    after = {p.name: p.read_bytes() for p in finished.iterdir() if p.is_file()}
    assert after == before


def test_a_finished_run_can_be_extended(finished, tmp_path):
    copy = copy_run(finished, tmp_path)
    run(resume=copy, overrides=["train.max_steps=30"])
    summary = json.loads((copy / "summary.json").read_text())
    assert summary["steps"] == 30 and summary["final"]["step"] == 30
    assert summary["train_tokens_per_s"] > 0


@pytest.mark.parametrize("key", ["model.n_embd=64", "train.lr=0.1", "train.seed=99", "data.path=x"])
def test_resume_refuses_overrides_that_change_the_run(finished, key):
    with pytest.raises(ConfigError, match=f"--set {key.split('=')[0]} cannot change"):
        run(resume=finished, overrides=[key])


def test_resume_refuses_an_edited_config(finished, tmp_path):
    copy = copy_run(finished, tmp_path)
    list_checkpoints(copy)[-1].unlink()
    config = copy / "config.yaml"
    config.write_text(config.read_text().replace("n_layer: 2", "n_layer: 1"))
    with pytest.raises(ConfigError, match=r"model.n_layer: 2 -> 1"):
        run(resume=copy)
    config.write_text(config.read_text().replace("n_layer: 1", "n_layer: 2"))
    config.write_text(config.read_text().replace("eval_interval: 20", "eval_interval: 5"))
    run(resume=copy)  # a logging interval may change
    assert [r["step"] for r in read_metrics(copy) if "eval/loss" in r] == [15, 20]


def test_a_live_lock_refuses_a_second_writer_and_a_stale_one_is_taken_over(finished, tmp_path):
    copy = copy_run(finished, tmp_path)
    list_checkpoints(copy)[-1].unlink()
    with RunLock(copy), pytest.raises(RunLocked, match=f"process {os.getpid()}"):
        run(resume=copy)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    import socket

    lock = {"pid": int(dead.stdout), "host": socket.gethostname()}
    (copy / LOCK_FILE).write_text(json.dumps(lock))
    run(resume=copy)
    assert not (copy / LOCK_FILE).exists()


def test_runs_dir_that_is_a_file(tmp_path):
    a_file = tmp_path / "runs"
    a_file.write_text("not a folder")
    with pytest.raises(UserError, match="is a file"):
        run(overrides=small_overrides(), runs_dir=a_file)
    assert a_file.read_text() == "not a folder"


def test_automatic_run_names_never_collide(tmp_path):
    a = _create_run_dir(tmp_path, "tiny-20260101-000000", automatic=True)
    b = _create_run_dir(tmp_path, "tiny-20260101-000000", automatic=True)
    assert a != b and a.is_dir() and b.is_dir()
    (a / "x").write_text("x")
    with pytest.raises(UserError, match="already exists"):
        _create_run_dir(tmp_path, a.name, automatic=False)


def test_a_second_writer_gets_a_one_line_error_from_the_cli(finished, tmp_path):
    copy = copy_run(finished, tmp_path)
    list_checkpoints(copy)[-1].unlink()
    before = (copy / "metrics.jsonl").read_bytes()
    with RunLock(copy):  # as a first `train --resume` would hold it
        out = subprocess.run(
            [sys.executable, "-m", PACKAGE, "train", "--resume", str(copy)],
            capture_output=True,
            text=True,
        )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "is being written by process" in out.stderr
    assert (copy / "metrics.jsonl").read_bytes() == before


# ----------------------------------------------------------------------------- reports


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ({"config.yaml": b"train: [unclosed"}, "config.yaml is damaged"),
        ({"config.yaml": b"- a\n- list\n"}, "config.yaml is damaged"),
        ({"summary.json": b'{"broken'}, "summary.json is damaged"),
        ({"metrics.jsonl": os.urandom(300) + b"\n" + b'{"step": 3, "loss": 1.0}\n'}, None),
        ({"metrics.jsonl": b'{"loss": 1.0}\n{"step": 2, "loss": 0.5}\n'}, None),
        ({"metrics.jsonl": b""}, None),
    ],
)
def test_report_on_damaged_run_folders(finished, tmp_path, damage, expected):
    copy = copy_run(finished, tmp_path)
    for name, data in damage.items():
        (copy / name).write_bytes(data)
    if expected and expected.startswith("config"):
        with pytest.raises(UserError, match=expected):
            write_report(copy)
        return
    text = write_report(copy).read_text()
    if expected:
        assert expected in text


def test_report_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "run"
    bad.mkdir()
    (bad / "config.yaml").write_text("[1, 2")
    out = subprocess.run(
        [sys.executable, "-m", PACKAGE, "report", str(bad)], capture_output=True, text=True
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: ") and "damaged" in out.stderr


def test_atomic_writes_keep_normal_permissions(tmp_path):
    """A new file gets open()'s permissions (not mkstemp's owner-only), a replaced one its own."""
    import stat

    from {{ cookiecutter.package_name }}.files import atomic_write_text

    umask = os.umask(0)
    os.umask(umask)
    new = atomic_write_text(tmp_path / "new.md", "x")
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask
    kept = tmp_path / "kept.md"
    kept.write_text("old")
    kept.chmod(0o640)
    atomic_write_text(kept, "new")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_text() == "new"
