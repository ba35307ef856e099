"""The command lines users type: a workshop preset through Copier's CLI, Cookiecutter's CLI with
yes/no answers as text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent


def test_workshop_preset_renders_without_prompts(template, tmp_path):
    preset = tmp_path / "preset.yml"
    preset.write_text(
        yaml.safe_dump({"track": "theory", "language": "zh", "ci": "none", "license": "Apache-2.0"})
    )
    for learner in ("alice", "bob"):
        dst = tmp_path / learner
        subprocess.run(
            [str(BIN / "copier"), "copy", "--defaults", "--vcs-ref", "HEAD", "--data-file",
             str(preset), "--data", f"project_name=AI Map {learner}", str(template), str(dst)],
            check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        answers = yaml.safe_load((dst / ".copier-answers.yml").read_text())
        assert answers["track"] == "theory" and answers["language"] == "zh"
        assert answers["package_name"] == f"ai_map_{learner}"
        assert not (dst / ".github").exists()
        assert "Apache License" in (dst / "LICENSE").read_text()


def test_copier_message_after_copy_names_the_next_commands(template, tmp_path):
    result = subprocess.run(
        [str(BIN / "copier"), "copy", "--defaults", "--vcs-ref", "HEAD", "--data",
         "project_name=Next Steps", str(template), str(tmp_path / "p")],
        check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    output = result.stdout + result.stderr
    for command in ("uv sync", "uv run python -m next_steps doctor", "uv run pytest"):
        assert command in output


def test_cookiecutter_cli_reads_yes_no_answers_as_booleans(template, tmp_path):
    subprocess.run(
        [str(BIN / "cookiecutter"), "--no-input", str(template / "template"), "-o",
         str(tmp_path), "project_name=Flags", "ci=none", "with_rag=no", "with_demo=false"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    project = tmp_path / "flags"
    assert project.is_dir() and not (project / ".github").exists()
    assert not (project / ".copier-answers.yml").exists()
    assert (project / "src/flags/train.py").is_file()
    assert not (project / "src/flags/rag").exists() and not (project / "src/flags/demo.py").exists()
    assert "gradio" not in (project / "pyproject.toml").read_text()
