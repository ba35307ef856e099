"""`labs` and `labs check`: the labs in order, each with the status its last check recorded.

Most tests run on a small made-up project (its own lab pages and tests, some passing, one
failing) so they can break a lab on purpose; the last ones look at this project's own labs.
"""

import json
import os
import shlex
import time
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.labs import (
    LabsError,
    check,
    current_track,
    find_lab,
    find_labs,
    listing,
    print_listing,
    read_status,
)

from .conftest import PROJECT_ROOT

PASSING = "def test_one_passes():\n    assert 1 + 1 == 2\n"
FAILING = (
    "def test_two_passes():\n    assert True\n\n\n"
    "def test_two_fails():\n    assert 1 + 1 == 3, 'arithmetic is off'\n"
)


def page(title: str, test: str, chinese: bool = False) -> str:
    label = "检查\uff1a" if chinese else "Check: "  # a Chinese page: full-width colon
    return f"# {title}\n\nSome reading.\n\n{label}`pytest {test}`\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Labs 01 (passing), 02 (one failing test), 03 (its test file is missing), 10 (Chinese)."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "labs-demo"\n', encoding="utf-8")
    labs, tests = tmp_path / "labs" / "demo", tmp_path / "checks"
    labs.mkdir(parents=True)
    tests.mkdir()
    (tests / "test_one.py").write_text(PASSING, encoding="utf-8")
    (tests / "test_two.py").write_text(FAILING, encoding="utf-8")
    (tests / "test_ten.py").write_text(PASSING, encoding="utf-8")
    (labs / "10-last.md").write_text(page("第十课", "checks/test_ten.py", True), encoding="utf-8")
    (labs / "02-second.md").write_text(page("Second", "checks/test_two.py"), encoding="utf-8")
    (labs / "01-first.md").write_text(page("First", "checks/test_one.py"), encoding="utf-8")
    (labs / "03-third.md").write_text(page("Third", "checks/test_gone.py"), encoding="utf-8")
    (labs / "notes.md").write_text("# Not a lab: no number\n", encoding="utf-8")
    return tmp_path


def test_labs_are_listed_in_number_order_and_start_not_tried(project, capsys):
    rows = listing(project, "demo")
    assert [row["number"] for row in rows] == ["01", "02", "03", "10"]
    assert [row["title"] for row in rows] == ["First", "Second", "Third", "第十课"]
    assert rows[3]["check"] == "checks/test_ten.py"  # the Chinese label works too
    assert {row["status"] for row in rows} == {"not tried"}
    print_listing(rows, "demo")
    out = capsys.readouterr().out
    assert out.index("First") < out.index("Second") < out.index("第十课")
    assert "Next: read labs/demo/01-first.md" in out and "labs check 01" in out


def test_check_records_passing_and_failing(project, capsys):
    assert check(project, "demo", "01").status == "passing"
    out = capsys.readouterr().out
    assert "Lab 01 passes: 1 test passed" in out
    assert "Next: lab 02, Second (labs/demo/02-second.md)" in out

    result = check(project, "demo", "2")  # "2" and "02" name the same lab
    assert (result.status, result.passed, result.failed) == ("failing", 1, 1)
    out = capsys.readouterr().out
    assert "1 of 2 tests failed" in out
    assert "test_two_fails" in out and "arithmetic is off" in out  # the first failure
    assert "labs check 02 --verbose" in out

    statuses = read_status(project / ".labs-status.json")
    assert statuses["demo/01"]["status"] == "passing"
    assert statuses["demo/02"]["status"] == "failing"
    assert "test_two_fails" in statuses["demo/02"]["first_failure"]
    rows = listing(project, "demo")
    assert [row["status"] for row in rows] == ["passing", "failing", "not tried", "not tried"]
    print_listing(rows, "demo")
    assert "Next: read labs/demo/02-second.md" in capsys.readouterr().out


def test_a_lab_whose_tests_are_missing_fails_and_says_why(project, capsys):
    result = check(project, "demo", "03")
    assert result.status == "failing"
    assert "test_gone.py" in result.first_failure
    assert "did not run" in capsys.readouterr().out


def test_a_fixed_lab_turns_passing(project, capsys):
    assert check(project, "demo", "02").status == "failing"
    (project / "checks" / "test_two.py").write_text(PASSING, encoding="utf-8")
    assert check(project, "demo", "02").status == "passing"
    assert read_status(project / ".labs-status.json")["demo/02"]["status"] == "passing"
    capsys.readouterr()
    assert check(project, "demo", "10").status == "passing"
    out = capsys.readouterr().out
    assert "That is the last lab" in out and "the project that ends the roadmap" in out


def test_editing_a_checked_lab_asks_for_a_new_check(project, capsys):
    assert check(project, "demo", "01").status == "passing"
    later = time.time() + 5
    os.utime(project / "checks" / "test_one.py", (later, later))  # the learner edits the test
    rows = listing(project, "demo")
    assert rows[0]["status"] == "passing" and rows[0]["edited_since"] is True
    assert rows[1]["edited_since"] is False  # never checked
    capsys.readouterr()
    print_listing(rows, "demo")
    out = capsys.readouterr().out
    assert "edited since: check again" in out
    assert "Next: read labs/demo/01-first.md" in out


def test_unknown_lab_number_lists_the_valid_ones(project):
    labs = find_labs(project, "demo")
    with pytest.raises(LabsError, match=r"no lab 07; the labs are: 01, 02, 03, 10"):
        find_lab(labs, "7")
    with pytest.raises(LabsError, match="looks like 01"):
        find_lab(labs, "first")
    assert not (project / ".labs-status.json").exists()  # nothing was run, nothing recorded


def test_pages_without_a_check_line_or_with_a_duplicate_number(project):
    (project / "labs" / "demo" / "04-no-check.md").write_text("# No check\n", encoding="utf-8")
    with pytest.raises(LabsError, match="has no check line"):
        check(project, "demo", "04")
    (project / "labs" / "demo" / "04-twin.md").write_text("# Twin\n", encoding="utf-8")
    with pytest.raises(LabsError, match="same number"):
        find_labs(project, "demo")


def test_a_damaged_status_file_is_a_clear_error(project):
    (project / ".labs-status.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(LabsError, match="delete it"):
        listing(project, "demo")


# ----------------------------------------------------------------------------- this project


def test_this_project_has_lab_01_and_every_check_names_existing_tests():
    track = current_track()
    labs = find_labs(PROJECT_ROOT, track)
    assert labs and labs[0].number == "01"
    assert not labs[0].title.startswith("01")  # "01 · " is taken off the heading
    for lab in labs:
        assert lab.check, f"{lab.page} has no check line"
        paths = [arg.split("::")[0] for arg in shlex.split(lab.check) if not arg.startswith("-")]
        assert paths and all((PROJECT_ROOT / p).exists() for p in paths), lab.check
        assert paths[0].startswith("tests/")  # a lab may check a core test (compare, rag)


def test_labs_command_lists_this_projects_labs(capsys):
    assert main(["labs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["number"] == "01"
    assert rows[0]["status"] in ("passing", "failing", "not tried")


def test_labs_check_with_an_unknown_number_is_a_one_line_error(capsys):
    assert main(["labs", "check", "99"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: there is no lab 99; the labs are: 01")


@pytest.mark.slow
def test_lab_01_of_this_project_passes(tmp_path, capsys):
    result = check(PROJECT_ROOT, current_track(), "01", status_path=tmp_path / "status.json")
    assert result.status == "passing", result.output
    assert read_status(tmp_path / "status.json")[f"{current_track()}/01"]["status"] == "passing"
