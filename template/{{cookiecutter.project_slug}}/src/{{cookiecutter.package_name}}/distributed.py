"""Training on several processes or machines: torchrun starts them, this module joins them up.

`torchrun` (PyTorch's launcher, `python -m torch.distributed.run`) starts one process per
device, on one machine or several, and tells each who it is through environment variables:
RANK (0..WORLD_SIZE-1 over all machines), LOCAL_RANK (0.. on this machine: which GPU to use)
and WORLD_SIZE. A plain `python -m <package> train` has none of them: it is rank 0 of 1, and
then nothing in this module changes anything.

`device.setup_hardware` joins the process group (gloo on CPUs, NCCL on NVIDIA GPUs) and picks
the GPU of LOCAL_RANK. Then `train.parallel` decides how the processes share the work:

- `ddp` (DistributedDataParallel): every process holds the whole model and trains on its own
  batches; after each backward pass the gradients are averaged over the processes (all-reduce),
  so every copy takes the same step. Memory per process = the whole model + optimizer.
- `fsdp` (FSDP2, `torch.distributed.fsdp.fully_shard`): each process keeps only 1/N of every
  parameter, gradient and optimizer state. A layer's full weights are gathered just before it
  runs and dropped after; gradients are reduce-scattered. For models that do not fit one device.
  Here each process still builds the whole model once before sharding it, so the weights alone
  must fit; the gradients and AdamW's two moments (three times the weights) are never whole on
  a device (a checkpoint gathers them into rank 0's CPU memory).
  Bigger models build on the "meta" device first (no memory), shard, then load: not done here.

Whatever the choice, a checkpoint holds the *full* weights and optimizer state, in the same
format as a single-process run: any run can be resumed with any number of processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import UserError

PARALLEL = ("ddp", "fsdp")  # the choices of train.parallel


@dataclass(frozen=True)
class World:
    """Who this process is among the processes torchrun started."""

    rank: int = 0  # 0..world_size-1, over every machine; rank 0 writes the files
    local_rank: int = 0  # 0.. on this machine: the GPU this process uses
    world_size: int = 1  # processes in the job; 1 = a plain single-process run

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def world_from_env(environ: Mapping[str, str] | None = None) -> World:
    """The World described by torchrun's variables; rank 0 of 1 when they are not set.

    Why a function: a typo in a hand-set variable (WORLD_SIZE=two) should be a one-line error
    that names it, not a ValueError from deep inside the training loop.
    """
    env = os.environ if environ is None else environ
    values = {}
    for key, name in (("rank", "RANK"), ("local_rank", "LOCAL_RANK"), ("world_size", "WORLD_SIZE")):
        text = env.get(name, "").strip()
        try:
            values[key] = int(text) if text else (1 if key == "world_size" else 0)
        except ValueError:
            raise UserError(
                f"{name}={text!r} is not a whole number; torchrun sets it, unset it to run "
                "a single process"
            ) from None
    world = World(**values)
    if world.world_size < 1 or not 0 <= world.rank < world.world_size or world.local_rank < 0:
        raise UserError(
            f"RANK={world.rank}, LOCAL_RANK={world.local_rank}, WORLD_SIZE={world.world_size} "
            "do not fit together (0 <= RANK < WORLD_SIZE); start the job with torchrun"
        )
    return world


def backend_for(device: str) -> str:
    """The collective library for `device`: NCCL between NVIDIA GPUs, gloo between CPUs."""
    return "nccl" if device.startswith("cuda") else "gloo"


def _parallel(run: Any, hw: Any) -> str:
    """What this process does: "single" (one process, whatever the config says), "ddp", "fsdp"."""
    return getattr(run.cfg.train, "parallel", "ddp") if hw.ddp else "single"


# ----------------------------------------------------------------------------- the model


def prepare(run: Any, hw: Any) -> Any:
    """The module the training loop calls (forward + backward); `run.model` stays the model.

    One process: the model itself (or its torch.compile'd version), exactly as before.
    DDP: the model wrapped in DistributedDataParallel, which averages gradients in backward.
    FSDP: the model's layers sharded in place, and the optimizer and schedule rebuilt over the
    sharded parameters (an optimizer built before sharding points at parameters that no
    longer exist).
    """
    import torch

    how = _parallel(run, hw)
    if how == "fsdp":
        _shard(run, hw)
    train_model = torch.compile(run.model) if run.cfg.train.compile else run.model
    if how == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [hw.local_rank] if hw.device != "cpu" else None
        train_model = DistributedDataParallel(train_model, device_ids=ids)
    return train_model


def _shard(run: Any, hw: Any) -> None:
    """FSDP2: shard each transformer block, then the rest (embeddings, head) at the root."""
    import torch
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    from .optim import build_optimizer

    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError:  # FSDP2 is public from torch 2.6
        raise UserError(
            f"train.parallel=fsdp needs FSDP2 (torch.distributed.fsdp.fully_shard, torch >= "
            f"2.6); this torch is {torch.__version__}: upgrade it or use train.parallel=ddp"
        ) from None

    model = run.model
    # Keep the optimizer state (restored from a checkpoint on resume) by parameter name: the
    # parameter objects change when they are sharded, their names do not.
    saved = optimizer_state_by_name(model, run.optimizer.state_dict(), run.optimizer)
    # One FSDP unit per block: only one block's full weights exist at a time in forward and
    # backward. The root unit holds what is left (embeddings, final norm, the tied head).
    for block in getattr(model, "blocks", ()):
        fully_shard(block)
    fully_shard(model)
    old_scheduler = run.scheduler
    run.optimizer = build_optimizer(model, run.cfg.train, run.task.lr_scale)
    run.scheduler = torch.optim.lr_scheduler.LambdaLR(run.optimizer, old_scheduler.lr_lambdas)
    run.scheduler.load_state_dict(old_scheduler.state_dict())
    if saved["state"]:  # resumed: each process takes its shard of the saved full state
        options = StateDictOptions(full_state_dict=True)
        set_optimizer_state_dict(model, run.optimizer, saved, options=options)


def grad_sync(train_model: Any, hw: Any, last_micro: bool) -> Any:
    """Context for one micro-batch's backward: share gradients only after the last one.

    With gradient accumulation the micro-batches' gradients add up locally; communicating
    after each would send the same amount of data grad_accum times. DDP skips it inside
    `no_sync()`; FSDP2 has `set_requires_gradient_sync(False)`.
    """
    if not hw.ddp:
        return contextlib.nullcontext()
    if hasattr(train_model, "no_sync"):  # DDP
        return contextlib.nullcontext() if last_micro else train_model.no_sync()
    module = getattr(train_model, "_orig_mod", train_model)  # under torch.compile
    if hasattr(module, "set_requires_gradient_sync"):  # FSDP2
        module.set_requires_gradient_sync(last_micro)
    return contextlib.nullcontext()


def mean_over_ranks(value: Any, hw: Any) -> Any:
    """The mean of a scalar tensor over every process (the loss every rank saw), for logging."""
    if hw.ddp:
        import torch.distributed as dist

        dist.all_reduce(value, op=dist.ReduceOp.SUM)  # SUM then divide: every backend has it
        value = value / hw.world_size
    return value


# ----------------------------------------------------------------------------- checkpoints


class _Gathered:
    """Stands in for a model or optimizer whose full state was gathered from the shards."""

    def __init__(self, state: dict[str, Any]):
        self._state = state

    def state_dict(self) -> dict[str, Any]:
        return self._state


def optimizer_state_by_name(model: Any, state: dict[str, Any], optimizer: Any) -> dict[str, Any]:
    """A plain optimizer state dict keyed by parameter name instead of position."""
    names = {id(p): name for name, p in model.named_parameters()}
    order = [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
    return {
        "state": {order[i]: s for i, s in state["state"].items()},
        "param_groups": [
            {**g, "params": [order[i] for i in g["params"]]} for g in state["param_groups"]
        ],
    }


def optimizer_state_by_position(state: dict[str, Any]) -> dict[str, Any]:
    """The inverse: names back to positions, the format `optimizer.state_dict()` has."""
    order = [name for g in state["param_groups"] for name in g["params"]]
    index = {name: i for i, name in enumerate(order)}
    return {
        "state": {index[name]: s for name, s in state["state"].items()},
        "param_groups": [
            {**g, "params": [index[n] for n in g["params"]]} for g in state["param_groups"]
        ],
    }


def _full_state(run: Any, with_optimizer: bool) -> tuple[dict, dict]:
    """Gather the full weights (and optimizer state) onto rank 0's CPU. Every rank must call."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    # full_state_dict: unsharded tensors; cpu_offload: only rank 0 keeps them, in CPU memory.
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = get_model_state_dict(run.model, options=options)
    optim = get_optimizer_state_dict(run.model, run.optimizer, options=options)
    return weights, optim if with_optimizer else {}


def for_saving(run: Any, hw: Any) -> Any:
    """The run as `runs.save` should see it; under FSDP every rank must call this.

    DDP and one process: the run itself (rank 0's model holds the full weights). FSDP: a copy
    of the run whose model and optimizer return the full state gathered from every shard,
    so the checkpoint has the single-process format.
    """
    if _parallel(run, hw) != "fsdp":
        return run
    weights, optim = _full_state(run, with_optimizer=True)
    if not hw.is_main:
        return run  # save() writes nothing on other ranks
    return dataclasses.replace(
        run, model=_Gathered(weights), optimizer=_Gathered(optimizer_state_by_position(optim))
    )


def for_report(run: Any, hw: Any) -> None:
    """Before rank 0 alone writes the report: give it a model that needs no other process.

    Under FSDP a forward pass gathers weights from every rank, so rank 0 generating a sample
    by itself would wait forever. Every rank gathers the full weights once; rank 0 loads them
    into a fresh, unsharded copy of the model.
    """
    if _parallel(run, hw) != "fsdp":
        return
    import torch

    weights, _ = _full_state(run, with_optimizer=False)
    if hw.is_main:
        with torch.random.fork_rng(devices=[]):  # building the copy draws random init weights
            plain = run.task.build_model()
        plain.load_state_dict(weights)
        run.model = plain.to(hw.device)
