import json
import subprocess
import sys

from {{ cookiecutter.package_name }}.cli import main

PACKAGE = "{{ cookiecutter.package_name }}"


def test_doctor_json(capsys):
    assert main(["doctor", "--json", "--device", "cpu"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["device"] == "cpu"
    assert info["dtype"] == "float32"
    assert {"torch", "python", "threads"} <= info.keys()


def test_doctor_text(capsys):
    assert main(["doctor", "--device", "cpu"]) == 0
    assert "device" in capsys.readouterr().out


def test_bad_device_is_a_message_not_a_traceback(capsys):
    assert main(["doctor", "--device", "tpu"]) == 2
    err = capsys.readouterr().err
    assert "Unknown device" in err
    assert "Traceback" not in err


def test_python_dash_m_runs():
    result = subprocess.run(
        [sys.executable, "-m", PACKAGE, "--help"], capture_output=True, text=True, check=True
    )
    assert "doctor" in result.stdout
