"""Bad answers stop both engines with the same message and leave nothing behind."""

from __future__ import annotations

import pytest

from .conftest import render_copier

BASE = {"project_name": "My AI Map"}
CASES = [
    ({"project_name": ""}, "project name is required"),
    ({"project_name": "   "}, "project name is required"),
    ({"project_name": 'My "quoted" map'}, "has a character that cannot go into pyproject.toml"),
    ({"project_slug": "../x"}, '"../x" is not a safe folder name'),
    ({"project_slug": "My Map"}, "for example my-map"),
    ({"package_name": "class"}, "is a Python keyword"),
    ({"package_name": "json"}, "module of the Python standard library"),
    ({"package_name": "random"}, "module of the Python standard library"),
    ({"package_name": "test"}, "module of the Python standard library"),
    ({"package_name": "torch"}, "import name of a library the project uses"),
    ({"package_name": "gradio"}, "import name of a library the project uses"),
    ({"package_name": "numpy"}, "import name of a library the project uses"),
    ({"package_name": "tests"}, "already a folder of the generated project"),
    ({"package_name": "applied"}, "is the name of a track's folders"),
    ({"project_name": "Theory"}, "is the name of a track's folders"),
    ({"package_name": "My-Pkg"}, "for example my_pkg"),
    ({"package_name": "2fast"}, "for example ai_2fast"),
    ({"project_name": "json"}, '"json" is a module of the Python standard library'),
    ({"author_email": "not-an-email"}, "is not an e-mail address"),
    ({"author_email": "ada@localhost"}, "is not an e-mail address"),
    ({"author_name": ""}, "author name is required"),
]
IDS = [f"{next(iter(a))}={next(iter(a.values()))!r}" for a, _ in CASES]


@pytest.mark.parametrize(("answers", "message"), CASES, ids=IDS)
def test_copier_rejects(template, tmp_path, answers, message):
    dst = tmp_path / "out"
    with pytest.raises(ValueError, match="Validation error") as error:
        render_copier(template, dst, {**BASE, **answers})
    assert message in str(error.value)
    assert not dst.exists()


@pytest.mark.parametrize(("answers", "message"), CASES, ids=IDS)
def test_cookiecutter_rejects(template, cookies, capfd, answers, message):
    result = cookies.bake(extra_context={**BASE, **answers}, template=str(template / "template"))
    assert result.exit_code != 0
    assert message in capfd.readouterr().err
    assert result.project_path is None or not result.project_path.exists()


@pytest.mark.parametrize("answers", [{"track": "robotics"}, {"license": "GPL"}, {"ci": "travis"}])
def test_both_engines_reject_an_unknown_choice(template, tmp_path, cookies, answers):
    with pytest.raises(ValueError):
        render_copier(template, tmp_path / "out", {**BASE, **answers})
    assert not (tmp_path / "out").exists()
    result = cookies.bake(extra_context={**BASE, **answers}, template=str(template / "template"))
    assert result.exit_code != 0
    assert str(next(iter(answers.values()))) in str(result.exception)


def test_a_chinese_name_keeps_its_display_name_and_gets_a_safe_package(template, tmp_path):
    dst = render_copier(template, tmp_path / "out", {"project_name": "数据项目"})
    assert (dst / "src/ai_project/__init__.py").is_file()
    assert (dst / "README.md").read_text(encoding="utf-8").startswith("# 数据项目\n")
    assert 'name = "ai-project"' in (dst / "pyproject.toml").read_text(encoding="utf-8")


def test_a_chinese_name_with_a_chosen_package_name(template, tmp_path, cookies):
    answers = {"project_name": "数据项目", "package_name": "shuju"}
    dst = render_copier(template, tmp_path / "out", answers)
    assert (dst / "src/shuju/cli.py").is_file()
    result = cookies.bake(extra_context=answers, template=str(template / "template"))
    assert result.exit_code == 0
    assert (result.project_path / "src/shuju/cli.py").is_file()
