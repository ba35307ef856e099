"""copier.yml and template/cookiecutter.json ask the same questions, the same way."""

from __future__ import annotations

import json
import re

import jinja2
import pytest
import yaml

from .conftest import ROOT

COPIER = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
COOKIECUTTER = json.loads((ROOT / "template/cookiecutter.json").read_text(encoding="utf-8"))
QUESTIONS = {k: v for k, v in COPIER.items() if not k.startswith("_") and k != "cookiecutter"}
CONTRACT = [
    "project_name",
    "project_slug",
    "package_name",
    "author_name",
    "author_email",
    "track",
    "language",
    "with_rag",
    "with_demo",
    "tracking",
    "license",
    "ci",
]
DERIVED = {"project_slug", "package_name"}


def test_question_names_and_order_are_the_contract():
    assert list(QUESTIONS) == CONTRACT
    assert [k for k in COOKIECUTTER if not k.startswith("_")] == CONTRACT
    assert list(yaml.safe_load(COPIER["cookiecutter"]["default"].replace("{{", "#"))) == CONTRACT


@pytest.mark.parametrize("name", CONTRACT)
def test_same_choices_defaults_and_help(name):
    question, cookie = QUESTIONS[name], COOKIECUTTER[name]
    assert question["help"] == COOKIECUTTER["__prompts__"][name]
    if "choices" in question:
        assert sorted(question["choices"]) == sorted(cookie)
        assert question["default"] == cookie[0], "Cookiecutter's default is its first choice"
    elif name in DERIVED:
        # The same expression, spelled with Cookiecutter's `cookiecutter.` prefix.
        assert name == "project_slug" or question["default"] == cookie.replace("cookiecutter.", "")
    else:
        assert question.get("default", "") == cookie
        assert question["type"] == ("bool" if isinstance(cookie, bool) else "str")


@pytest.mark.parametrize(
    "name", ["My AI Map", "数据项目", "GPT 学习 2", "  Ça va, RAG! ", "2048", "a--b..c", "x" * 90]
)
def test_cookiecutter_slug_matches_the_shared_macro(name):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROOT)))
    macro = env.get_template("hooks/answers.jinja").module.slugify
    inline = env.from_string(COOKIECUTTER["project_slug"])
    assert inline.render(cookiecutter={"project_name": name}) == str(macro(name))


def test_every_validator_uses_the_shared_checks():
    for name in ("project_name", "project_slug", "package_name", "author_name", "author_email"):
        assert "hooks/answers.jinja" in QUESTIONS[name]["validator"]


def test_no_trust_needed():
    assert not {"_tasks", "_migrations", "_jinja_extensions", "_external_data"} & COPIER.keys()


def test_questions_doc_lists_every_question():
    doc = (ROOT / "docs/questions.md").read_text(encoding="utf-8")
    for name, question in QUESTIONS.items():
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{name}`")), None)
        assert row, f"docs/questions.md has no row for {name}"
        for choice in question.get("choices", []):
            assert f"`{choice}`" in row
        if isinstance(question.get("default"), bool):
            assert f"`{str(question['default']).lower()}`" in row
        elif "choices" in question:
            assert re.search(rf"\*\*`{re.escape(question['default'])}`\*\*", row), row
