import pytest
import torch

from {{ cookiecutter.package_name }}.device import doctor_info, pick_device, precision_for


def test_cpu_is_always_available():
    assert pick_device("cpu") == "cpu"
    assert precision_for("cpu").dtype == "float32"


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device() == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device() == "cpu"


def test_environment_variable_overrides(monkeypatch):
    monkeypatch.setenv("AI_DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == "cpu"


@pytest.mark.parametrize(
    ("bf16", "dtype", "scaler"), [(True, "bfloat16", False), (False, "float16", True)]
)
def test_gpu_precision_policy(monkeypatch, bf16, dtype, scaler):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    precision = precision_for("cuda")
    assert (precision.dtype, precision.use_grad_scaler) == (dtype, scaler)


def test_unavailable_or_unknown_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="not available"):
        pick_device("cuda")
    with pytest.raises(ValueError, match="Unknown device"):
        pick_device("tpu")


def test_doctor_info_has_the_contract_keys():
    info = doctor_info("cpu")
    assert {"device", "dtype", "torch", "python", "threads"} <= info.keys()
