"""Copier asked interactively, in a real terminal (a pty): the help texts are the prompts, a bad
answer is refused with its message and asked again, and Enter keeps each default."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import yaml

from .test_questions import QUESTIONS

COPIER = str(Path(sys.executable).parent / "copier")


def test_interactive_copy_with_a_refused_answer(template, tmp_path):
    dst = tmp_path / "project"
    child = pexpect.spawn(
        COPIER,
        ["copy", "--vcs-ref", "HEAD", str(template), str(dst)],
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 250),
        # A pty answers no cursor-position requests; without this, each prompt waits for one.
        env={**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1"},
    )
    try:
        child.expect_exact(QUESTIONS["project_name"]["help"])
        child.sendline("数据项目")
        child.expect_exact(QUESTIONS["project_slug"]["help"])
        child.send("\r")
        child.expect_exact(QUESTIONS["package_name"]["help"])
        child.send("\x15json")  # Ctrl-U clears the suggested default
        child.expect_exact("json")
        child.send("\r")
        child.expect_exact("module of the Python standard library")
        child.send("\x15shuju\r")
        for name in list(QUESTIONS)[3:]:
            child.expect_exact(QUESTIONS[name]["help"][:40])
            child.send("\r")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    answers = yaml.safe_load((dst / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["project_name"] == "数据项目"
    assert answers["package_name"] == "shuju"
    assert answers["track"] == "applied"
    assert (dst / "src/shuju/cli.py").is_file()
