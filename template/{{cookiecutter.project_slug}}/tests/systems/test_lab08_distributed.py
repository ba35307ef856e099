"""Lab 08 (labs/systems/08-distributed.md): the core `train` under torchrun, DDP and FSDP2.

`python -m {{ cookiecutter.package_name }} labs check 08` runs this file.
The fast tests check the parts (torchrun's variables, the single-process path, the format of
the optimizer's state, the figures); the slow ones start real 2-process runs with the gloo
backend on the CPU.
"""

import json
import math
import os
import shutil
import subprocess
import sys
from contextlib import nullcontext

import pytest
import torch

from {{ cookiecutter.package_name }} import distributed
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.device import Hardware, pick_precision
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.labs import load_settings
from {{ cookiecutter.package_name }}.models.gpt import GPT, GPTConfig
from {{ cookiecutter.package_name }}.optim import build_optimizer
from {{ cookiecutter.package_name }}.runs import open_run
from {{ cookiecutter.package_name }}.systems.distributed import (
    DistributedSettings,
    scaling,
    torchrun_command,
)
from {{ cookiecutter.package_name }}.tracking import read_metrics

from ..conftest import DOCS, PACKAGE, PROJECT_ROOT, small_overrides

# The model of conftest.small_overrides, for the lab's `overrides` setting.
SMALL_MODEL = [
    "model.n_layer=2",
    "model.n_head=2",
    "model.n_embd=32",
    "model.block_size=32",
    "train.batch_size=8",
    f"data.path={DOCS}",
]


# ----------------------------------------------------------------------------- fast


def test_no_torchrun_variables_means_one_process():
    assert distributed.world_from_env({}) == distributed.World(0, 0, 1)
    assert not distributed.world_from_env({}).distributed
    world = distributed.world_from_env({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"})
    assert world == distributed.World(3, 1, 4) and world.distributed
    with pytest.raises(UserError, match="WORLD_SIZE='two'"):
        distributed.world_from_env({"WORLD_SIZE": "two"})
    with pytest.raises(UserError, match="do not fit"):
        distributed.world_from_env({"RANK": "2", "WORLD_SIZE": "2"})
    assert distributed.backend_for("cpu") == "gloo"
    assert distributed.backend_for("cuda:1") == "nccl"


def test_one_process_changes_nothing_even_with_fsdp_asked(tmp_path, small_config):
    """WORLD_SIZE unset: the model is not wrapped, the run and its tensors pass through."""
    hw = Hardware("cpu", pick_precision("cpu", "float32"))
    run = open_run(hw, tmp_path, small_config(**{"train.parallel": "fsdp"}))
    try:
        model, optimizer = run.model, run.optimizer
        assert distributed.prepare(run, hw) is model
        assert run.model is model and run.optimizer is optimizer  # not rebuilt
        assert distributed.for_saving(run, hw) is run
        assert isinstance(distributed.grad_sync(model, hw, last_micro=False), nullcontext)
        loss = torch.tensor(2.5)
        assert distributed.mean_over_ranks(loss, hw) is loss
        distributed.for_report(run, hw)
        assert run.model is model
    finally:
        run.lock.release()


def test_optimizer_state_by_name_round_trips():
    """Checkpoints keep the single-process format; FSDP needs it keyed by parameter name."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=20))
    from {{ cookiecutter.package_name }}.config import TrainConfig

    optimizer = build_optimizer(model, TrainConfig())
    x = torch.randint(0, 20, (2, 8))
    model(x, x)[1].backward()
    optimizer.step()
    state = optimizer.state_dict()
    named = distributed.optimizer_state_by_name(model, state, optimizer)
    assert "wte.weight" in named["state"] and "blocks.0.attn.c_attn.weight" in named["state"]
    back = distributed.optimizer_state_by_position(named)
    assert back["param_groups"] == state["param_groups"]
    assert set(back["state"]) == set(state["state"])
    for i, values in state["state"].items():
        for key, tensor in values.items():
            assert torch.equal(back["state"][i][key], tensor)
    build_optimizer(model, TrainConfig()).load_state_dict(back)  # a plain optimizer takes it


def test_scaling_figures():
    runs = scaling(
        [{"processes": 1, "tokens_per_s": 1000.0}, {"processes": 2, "tokens_per_s": 1500.0}]
    )
    assert runs[0]["speedup"] == pytest.approx(1.0) and runs[0]["efficiency"] == pytest.approx(1)
    assert runs[1]["speedup"] == pytest.approx(1.5)
    assert runs[1]["per_process_tokens_per_s"] == pytest.approx(750.0)
    assert runs[1]["efficiency"] == pytest.approx(0.75)
    doubled = scaling(
        [{"processes": 2, "tokens_per_s": 800.0}, {"processes": 4, "tokens_per_s": 1600.0}]
    )
    assert doubled[1]["efficiency"] == pytest.approx(1.0)  # against the first run, not 1 process


def test_each_run_is_torchrun_around_the_train_command(tmp_path):
    settings = DistributedSettings(parallel="fsdp", max_steps=20, overrides=["train.lr=1e-3"])
    command = torchrun_command(settings, 2, tmp_path)
    assert command[:4] == [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    assert command[4:10] == ["--nproc-per-node", "2", "-m", PACKAGE, "train", "--config"]
    sets = [command[i + 1] for i, arg in enumerate(command) if arg == "--set"]
    assert "train.parallel=fsdp" in sets and "train.max_steps=20" in sets
    assert sets[-1] == "train.lr=1e-3"  # the user's overrides come last: they win
    assert f"train.threads={max(1, (os.cpu_count() or 1) // 2)}" in sets


def test_the_config_file_holds_the_defaults():
    path = PROJECT_ROOT / "configs" / "systems" / "ddp.yaml"
    assert load_settings(DistributedSettings(), path, []) == DistributedSettings()


def test_bad_setting_is_a_one_line_error(capsys):
    assert main(["systems", "ddp", "--set", "processes=0"]) == 2
    assert "processes" in capsys.readouterr().err
    assert main(["systems", "ddp", "--set", "parallel=zero"]) == 2
    assert "parallel" in capsys.readouterr().err


# ----------------------------------------------------------------------------- slow: real runs


def torchrun_train(runs_dir, name, *extra, resume=None, steps=20):
    """`train` under torchrun, 2 CPU processes (gloo); returns the run folder."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", PACKAGE, "train", "--runs-dir", str(runs_dir)]
    if resume is not None:
        command += ["--resume", str(resume), "--set", f"train.max_steps={steps}"]
    else:
        values = {"name": name, "train.max_steps": steps, "train.threads": 1}
        for item in small_overrides(**values):
            command += ["--set", item]
    command += [part for item in extra for part in ("--set", item)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return runs_dir / name


def losses(run_dir):
    return [(r["step"], r["loss"]) for r in read_metrics(run_dir) if "loss" in r]


@pytest.mark.slow
def test_the_lab_compares_one_and_two_processes(tmp_path, capsys):
    args = ["systems", "ddp", "--json", "--set", f"config={PROJECT_ROOT / 'configs' / 'tiny.yaml'}"]
    args += ["--set", "max_steps=10", "--set", "log_interval=2", "--set", f"runs_dir={tmp_path}"]
    args += ["--set", f"overrides={','.join(SMALL_MODEL)}"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["processes"] for r in result["runs"]] == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["procs1", "procs2"]  # one folder each
    for r in result["runs"]:
        assert r["tokens_per_s"] > 0 and r["efficiency"] > 0 and math.isfinite(r["final_loss"])
        run_dir = tmp_path / f"procs{r['processes']}"
        steps = [step for step, _ in losses(run_dir)]
        assert steps == sorted(set(steps)), "only rank 0 writes metrics"
        assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step_0000010.pt"]
        assert not (run_dir / ".lock").exists()
    assert result["runs"][1]["speedup"] == pytest.approx(
        result["runs"][1]["tokens_per_s"] / result["runs"][0]["tokens_per_s"]
    )


@pytest.mark.slow
def test_ddp_and_fsdp_take_the_same_steps_and_resume(tmp_path, capsys):
    """FSDP2 shards the weights but must compute the very same training as DDP."""
    ddp = torchrun_train(tmp_path, "ddp")
    fsdp = torchrun_train(tmp_path, "fsdp", "train.parallel=fsdp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "fsdp"]
    a, b = losses(ddp), losses(fsdp)
    assert [s for s, _ in a] == [s for s, _ in b] == [1, 5, 10, 15, 20]
    assert all(math.isfinite(x) for _, x in a)
    assert [x for _, x in a] == pytest.approx([x for _, x in b], rel=1e-4)
    assert a[-1][1] < a[0][1] - 0.3  # it learns
    for run_dir in (ddp, fsdp):
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["world_size"] == 2 and (run_dir / "report.md").is_file()
    # FSDP writes the full, single-process format: the same keys and shapes as DDP's.
    ckpt_a = torch.load(ddp / "checkpoints" / "step_0000020.pt", weights_only=True)
    ckpt_b = torch.load(fsdp / "checkpoints" / "step_0000020.pt", weights_only=True)
    assert {k: v.shape for k, v in ckpt_a["model"].items()} == {
        k: v.shape for k, v in ckpt_b["model"].items()
    }
    assert ckpt_a["optimizer"]["param_groups"] == ckpt_b["optimizer"]["param_groups"]

    # Resume under torchrun: each from its own checkpoint, each with its own method.
    single = tmp_path / "single"
    shutil.copytree(fsdp, single)
    torchrun_train(tmp_path, "ddp", resume=ddp, steps=30)
    torchrun_train(tmp_path, "fsdp", resume=fsdp, steps=30)
    a, b = losses(ddp), losses(fsdp)
    assert [s for s, _ in a][-2:] == [25, 30]
    assert [x for _, x in a] == pytest.approx([x for _, x in b], rel=1e-4)
    assert json.loads((fsdp / "summary.json").read_text())["resumed_from_step"] == 20

    # An FSDP checkpoint resumes in a plain single process too (train.parallel is ignored).
    assert main(["train", "--resume", str(single), "--set", "train.max_steps=25"]) == 0
    capsys.readouterr()
    summary = json.loads((single / "summary.json").read_text())
    assert summary["world_size"] == 1 and summary["steps"] == 25
