"""Where the model runs and in which precision, plus the `doctor` report.

Policy (the same code runs on a laptop CPU and on a GPU server):
- device: cuda > mps > cpu. `train.device` in the config wins; when it is "auto", the
  environment variable AI_DEVICE (e.g. AI_DEVICE=cpu) can force one.
- precision: bfloat16 where the accelerator supports it (no loss scaling needed), else
  float16 with `torch.amp.GradScaler` (avoids gradients underflowing to zero), else float32.
  On CPU we stay in float32 unless bfloat16 is asked for explicitly: CPU autocast only pays off
  on processors with native bf16 instructions.
- TF32 matmuls on NVIDIA GPUs (Ampere+), set through whichever API this torch version has.
- `setup_hardware` applies all of this for one training process (and its rank under torchrun).
"""

from __future__ import annotations

import os
import platform
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from .errors import UserError

ENV_VAR = "AI_DEVICE"
_DTYPES = ("float32", "bfloat16", "float16")


class DeviceError(UserError):
    """The requested device or precision is not available here."""


def _mps_available(torch: Any) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(requested: str = "auto") -> str:
    """Return a torch device string ('cuda', 'cuda:1', 'mps' or 'cpu')."""
    import torch

    choice = (requested or "auto").strip().lower()
    if choice == "auto":
        choice = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if choice == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available(torch) else "cpu"
    kind = choice.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {choice!r} requested but CUDA is not available; use cpu")
    if kind == "mps" and not _mps_available(torch):
        raise DeviceError("device 'mps' requested but MPS is not available; use cpu")
    if kind not in ("cuda", "mps", "cpu"):
        raise DeviceError(f"unknown device {choice!r}: use auto, cpu, cuda, cuda:N or mps")
    return choice


@dataclass(frozen=True)
class Precision:
    """What the training loop needs to know about numerics."""

    dtype: str  # float32 | bfloat16 | float16
    device_type: str  # cuda | mps | cpu
    autocast: bool  # run forward passes under torch.autocast
    use_scaler: bool  # float16 needs GradScaler to keep small gradients representable

    def autocast_context(self) -> Any:
        if not self.autocast:
            return nullcontext()
        import torch

        return torch.autocast(device_type=self.device_type, dtype=getattr(torch, self.dtype))


def pick_precision(device: str, requested: str = "auto") -> Precision:
    """Choose the training precision for `device` following the policy above."""
    import torch

    device_type = device.split(":")[0]
    dtype = (requested or "auto").strip().lower()
    if dtype != "auto" and dtype not in _DTYPES:
        raise DeviceError(f"unknown dtype {requested!r}: use auto, {', '.join(_DTYPES)}")
    if dtype == "auto":
        if device_type == "cuda":
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            # MPS autocast is young and CPU bf16 is only fast with native support: stay exact.
            dtype = "float32"
    if device_type == "cpu" and dtype == "float16":
        raise DeviceError("float16 training on CPU is not supported; use bfloat16 or float32")
    autocast = dtype != "float32"
    return Precision(dtype, device_type, autocast, use_scaler=dtype == "float16")


def configure_tf32(enabled: bool = True) -> str:
    """Allow TF32 tensor cores for float32 matmuls/convolutions on CUDA; returns the API used.

    torch >= 2.9 has `fp32_precision` attributes and deprecates the old `allow_tf32` flags;
    older versions only have the flags. Feature-detecting avoids warnings on both.
    """
    import torch

    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        value = "tf32" if enabled else "ieee"
        matmul.fp32_precision = value
        conv = getattr(torch.backends.cudnn, "conv", None)
        if conv is not None and hasattr(conv, "fp32_precision"):
            conv.fp32_precision = value
        return "fp32_precision"
    matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    return "allow_tf32"


def configure_threads(threads: int = 0) -> int:
    """Set torch's intra-op CPU threads when asked (0 = keep default); returns the count."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def system_memory_gb() -> float | None:
    """Total RAM in GiB (POSIX sysconf; None where unavailable, e.g. Windows)."""
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def doctor_info(requested_device: str = "auto", requested_dtype: str = "auto") -> dict[str, Any]:
    """Everything `doctor` reports, as a JSON-friendly dict."""
    import torch

    device = pick_device(requested_device)
    precision = pick_precision(device, requested_dtype)
    info: dict[str, Any] = {
        "device": device,
        "dtype": precision.dtype,
        "grad_scaler": precision.use_scaler,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "memory_gb": system_memory_gb(),
        "cuda_available": torch.cuda.is_available(),
        "torch_build": f"cuda {torch.version.cuda}" if torch.version.cuda else "cpu",
        "mps_available": _mps_available(torch),
        "env_device": os.environ.get(ENV_VAR),
    }
    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        major, minor = torch.cuda.get_device_capability(index)
        info.update(
            accelerator=torch.cuda.get_device_name(index),
            capability=f"{major}.{minor}",
            accelerator_memory_gb=round(props.total_memory / 2**30, 1),
            device_count=torch.cuda.device_count(),
            cuda_version=torch.version.cuda,
        )
    elif device == "mps":
        info["accelerator"] = "Apple Metal (MPS)"
    return info


def format_doctor(info: dict[str, Any]) -> str:
    """A short human-readable version of `doctor_info()`."""
    lines = [
        f"python   {info['python']} ({sys.executable})",
        f"torch    {info['torch']}",
        f"device   {info['device']}"
        + (f"  {info['accelerator']}" if info.get("accelerator") else "")
        + (f"  (capability {info['capability']})" if info.get("capability") else ""),
        f"dtype    {info['dtype']}" + ("  + GradScaler" if info.get("grad_scaler") else ""),
        f"threads  {info['threads']} of {info['cpu_count']} CPUs",
        f"memory   {info['memory_gb']} GiB RAM"
        + (
            f", {info['accelerator_memory_gb']} GiB on the accelerator"
            if info.get("accelerator_memory_gb")
            else ""
        ),
    ]
    if info.get("env_device"):
        lines.append(f"{ENV_VAR}={info['env_device']} is set")
    if info["device"] == "cpu":
        lines.append("note     no GPU found: training runs on the CPU (fine for the tiny configs)")
    if str(info.get("torch_build", "")).startswith("cuda") and not info.get("cuda_available"):
        lines += [
            f"note     this torch is a CUDA build ({info['torch_build']}, about 5 GB of NVIDIA",
            "         libraries) and no NVIDIA GPU is visible: a laptop or CI can use the far",
            "         smaller CPU build ('A lighter torch' in docs/device-and-precision.md)",
        ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- one training process

# Peak dense bf16/fp16 tensor-core FLOP/s used for MFU (model FLOPs utilisation); add yours.
_PEAK_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40": 181e12,
    "L4": 121e12,
    "A10": 125e12,
    "4090": 165e12,
    "3090": 71e12,
    "V100": 125e12,
    "T4": 65e12,
}


def peak_flops(device_name: str) -> float | None:
    return next((v for k, v in _PEAK_FLOPS.items() if k in device_name), None)


@dataclass
class Hardware:
    device: str
    precision: Any  # device.Precision: dtype, autocast, GradScaler or not
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    accelerator: str = ""  # GPU name, for MFU against its peak FLOP/s

    @property
    def ddp(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0  # only rank 0 writes files and prints


def setup_hardware(t: Any) -> Hardware:
    """Device and precision for `t` (a config's train section); under torchrun, join the group."""
    import torch

    from .distributed import backend_for, world_from_env

    world = world_from_env()  # torchrun sets RANK etc.; a plain `python -m` run is rank 0 of 1
    rank, local_rank, world_size = world.rank, world.local_rank, world.world_size
    device = pick_device(t.device)
    if world_size > 1 and device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    if world_size > 1:
        import torch.distributed as dist

        dist.init_process_group(backend=backend_for(device))
    if device.startswith("cuda"):
        configure_tf32(True)
    configure_threads(t.threads)
    return Hardware(device, pick_precision(device, t.dtype), rank, local_rank, world_size)
