"""Which accelerator to use and at what precision.

One place decides, so training, the demo and `doctor` agree: CUDA, then Apple's MPS, then the CPU;
bf16 where the hardware does it natively, fp16 (with a GradScaler) on older GPUs, fp32 otherwise.
Set the environment variable AI_DEVICE (cuda, mps or cpu) to override the choice.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    """The dtype that autocast uses, and whether fp16 needs loss scaling."""

    dtype: str  # "bfloat16", "float16" or "float32"
    use_grad_scaler: bool


def pick_device(requested: str | None = None) -> str:
    """Return "cuda", "mps" or "cpu": the requested one if it exists, else the best available."""
    import torch

    requested = (requested or os.environ.get("AI_DEVICE") or "auto").lower()
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    if requested == "auto":
        return next(name for name, ok in available.items() if ok)
    if requested not in available:
        raise ValueError(f"Unknown device {requested!r}: use auto, cuda, mps or cpu.")
    if not available[requested]:
        raise ValueError(f"Device {requested!r} is not available here: use auto or cpu.")
    return requested


def precision_for(device: str) -> Precision:
    """bf16 where supported, else fp16 with a GradScaler on GPUs, else fp32."""
    import torch

    if device == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision("bfloat16", use_grad_scaler=False)
        return Precision("float16", use_grad_scaler=True)
    if device == "mps":
        return Precision("float16", use_grad_scaler=False)
    return Precision("float32", use_grad_scaler=False)


def doctor_info(requested: str | None = None) -> dict:
    """Everything `doctor` reports, as plain JSON-ready values."""
    import torch

    device = pick_device(requested)
    info = {
        "device": device,
        "dtype": precision_for(device).dtype,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "memory_gb": _memory_gb(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info["accelerator"] = props.name
        info["accelerator_memory_gb"] = round(props.total_memory / 2**30, 1)
        info["compute_capability"] = f"{props.major}.{props.minor}"
    return info


def format_info(info: dict) -> str:
    """A short human report, one `key: value` per line."""
    width = max(len(key) for key in info)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in info.items())


def _memory_gb() -> float | None:
    """Physical memory in GiB, where the OS tells it without extra packages."""
    if sys.platform.startswith("linux") or sys.platform == "darwin":
        try:
            return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
        except (ValueError, OSError, AttributeError):
            return None
    return None
