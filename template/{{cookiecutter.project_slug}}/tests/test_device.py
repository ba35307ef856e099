"""Device policy tests. GPU branches run on CPU by faking availability with monkeypatch."""

import json
import warnings

import pytest
import torch

from {{ cookiecutter.package_name }} import device as dev


@pytest.fixture
def fake_cuda(monkeypatch):
    def install(bf16: bool = True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 80GB HBM3")
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))

        class Props:
            total_memory = 80 * 2**30

        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda *a: Props())

    return install


def test_cpu_default(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda torch: False)
    assert dev.pick_device("auto") == "cpu"
    p = dev.pick_precision("cpu")
    assert (p.dtype, p.autocast, p.use_scaler) == ("float32", False, False)


def test_cuda_preferred_with_bf16(fake_cuda):
    fake_cuda(bf16=True)
    assert dev.pick_device("auto") == "cuda"
    p = dev.pick_precision("cuda")
    assert (p.dtype, p.autocast, p.use_scaler) == ("bfloat16", True, False)


def test_cuda_without_bf16_uses_fp16_and_scaler(fake_cuda):
    fake_cuda(bf16=False)
    p = dev.pick_precision("cuda:0")
    assert (p.dtype, p.autocast, p.use_scaler) == ("float16", True, True)


def test_mps_when_no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda torch: True)
    assert dev.pick_device("auto") == "mps"
    assert dev.pick_precision("mps").dtype == "float32"


def test_env_var_and_config_override(fake_cuda, monkeypatch):
    fake_cuda()
    monkeypatch.setenv(dev.ENV_VAR, "cpu")
    assert dev.pick_device("auto") == "cpu"  # env var applies when the config says auto
    assert dev.pick_device("cuda") == "cuda"  # an explicit config value wins


def test_unavailable_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(dev.DeviceError, match="CUDA is not available"):
        dev.pick_device("cuda")
    with pytest.raises(dev.DeviceError, match="unknown device"):
        dev.pick_device("tpu")
    with pytest.raises(dev.DeviceError, match="float16 training on CPU"):
        dev.pick_precision("cpu", "float16")


def test_cpu_autocast_only_when_asked():
    p = dev.pick_precision("cpu", "bfloat16")
    assert p.autocast and not p.use_scaler
    with p.autocast_context():
        out = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16


def test_tf32_without_warnings():
    matmul = torch.backends.cuda.matmul
    attr = "fp32_precision" if hasattr(matmul, "fp32_precision") else "allow_tf32"
    before = getattr(matmul, attr)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            api = dev.configure_tf32(True)
        assert api == attr
    finally:
        setattr(matmul, attr, before)


def test_doctor_info_cpu_is_json():
    info = dev.doctor_info("cpu")
    for key in ("device", "dtype", "torch", "python", "threads", "memory_gb"):
        assert key in info
    json.dumps(info)
    assert "threads" in dev.format_doctor(info)


def test_doctor_info_fake_gpu(fake_cuda):
    fake_cuda()
    info = dev.doctor_info()
    assert info["device"] == "cuda"
    assert info["accelerator"].startswith("NVIDIA H100")
    assert info["capability"] == "9.0"
    assert info["accelerator_memory_gb"] == 80.0
    assert "H100" in dev.format_doctor(info)


def test_threads():
    n = torch.get_num_threads()
    assert dev.configure_threads(0) == n


def test_doctor_says_when_a_cuda_build_has_no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "13.2")
    info = dev.doctor_info()
    assert info["torch_build"] == "cuda 13.2"
    assert "A lighter torch" in dev.format_doctor(info)
    monkeypatch.setattr(torch.version, "cuda", None)  # the CPU build (or macOS): nothing to say
    info = dev.doctor_info()
    assert info["torch_build"] == "cpu"
    assert "A lighter torch" not in dev.format_doctor(info)
