"""The labs of your track, in order, and where you stand on each.

A lab is a page `labs/<track>/NN-slug.md` (NN = 01, 02, ...) and the tests it names. The page
says what to read, what to run and what to change; one line of it names the check, written
like this (a Chinese page says 检查 and may use a full-width colon):

    Check: `pytest tests/theory/test_lab01_regression.py`

So adding a lab is adding a page and its test; nothing here changes.

- `labs` lists the labs in order with each one's status: passing, failing or not tried.
- `labs check NN` runs that lab's tests (pytest in a subprocess, with this same Python),
  prints a short summary and records the result in `.labs-status.json` at the project root.
  `labs check --all` checks every lab in order. The exit code is 0 when the checks pass, 1
  when one fails.

The track is the one track package this project holds (theory, applied or systems): it is
looked up at run time, so this module never imports a track.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import textwrap
import time
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import UserError
from .files import atomic_write_text

TRACKS = ("theory", "applied", "systems")
STATUS_FILE = ".labs-status.json"
PAGE_NAME = re.compile(r"^(\d{2})-([a-z0-9][a-z0-9-]*)\.md$")
CHECK_LINE = re.compile(r"^\s*(?:Check|检查)\s*[:\uff1a]\s*`pytest\s+([^`]+)`")
NOT_TRIED = "not tried"


class LabsError(UserError):
    """No labs folder, an unknown lab number, a page without a check line."""


@dataclass
class Lab:
    number: str  # "01"
    slug: str  # "regression"
    title: str  # the page's first heading
    page: Path  # relative to the project root
    check: str | None  # pytest arguments from the page's Check: line


@dataclass
class CheckResult:
    status: str  # passing | failing
    passed: int
    failed: int
    seconds: float
    first_failure: str  # "test_name: first line of its message", or why pytest stopped
    output: str  # pytest's own output (shown with --verbose)


# ----------------------------------------------------------------------------- finding the labs


def current_track() -> str:
    """The track whose package this project holds."""
    for name in TRACKS:
        if importlib.util.find_spec(f".{name}", __package__) is not None:
            return name
    raise LabsError(f"this project has no track package (src/{__package__}/<track>/)")


def project_root() -> Path:
    """The project this package belongs to (an editable install, as `uv sync` makes), else the
    nearest folder upwards from the current one that holds pyproject.toml and labs/."""
    source = Path(__file__).resolve().parents[2]  # src/<package>/labs.py -> the project
    for folder in (source, Path.cwd(), *Path.cwd().parents):
        if (folder / "pyproject.toml").is_file() and (folder / "labs").is_dir():
            return folder
    raise LabsError("no labs/ folder found: run this command inside your project folder")


def read_page(path: Path, root: Path) -> Lab:
    number, slug = PAGE_NAME.match(path.name).groups()
    title, check = slug, None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LabsError(f"{path} is not UTF-8 text; re-save it as UTF-8") from None
    for line in text.splitlines():
        if line.startswith("# ") and title == slug:
            title = re.sub(r"^\d+\s*[·.:-]\s*", "", line[2:].strip())  # "01 · Title" -> "Title"
        match = CHECK_LINE.match(line)
        if match and check is None:
            check = match.group(1).strip()
    return Lab(number, slug, title, path.relative_to(root), check)


def find_labs(root: Path, track: str) -> list[Lab]:
    """Every lab page of the track, in number order."""
    folder = root / "labs" / track
    if not folder.is_dir():
        raise LabsError(f"{folder} is missing: the {track} track keeps its lab pages there")
    labs = [read_page(p, root) for p in folder.iterdir() if PAGE_NAME.match(p.name)]
    labs.sort(key=lambda lab: int(lab.number))
    numbers = [lab.number for lab in labs]
    twins = [lab for lab in labs if numbers.count(lab.number) > 1]
    if twins:
        raise LabsError(f"{twins[0].page} and {twins[1].page} have the same number: renumber one")
    return labs


def find_lab(labs: list[Lab], number: str) -> Lab:
    valid = ", ".join(lab.number for lab in labs) or "none yet"
    if not number.isdigit():
        raise LabsError(f"a lab number looks like 01, got {number!r}; the labs are: {valid}")
    for lab in labs:
        if int(lab.number) == int(number):
            return lab
    raise LabsError(f"there is no lab {int(number):02d}; the labs are: {valid}")


# ----------------------------------------------------------------------------- status file


def read_status(path: Path) -> dict[str, dict[str, Any]]:
    """{"theory/01": {"status": ..., "checked": ..., ...}}; empty when nothing was checked."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        labs = data["labs"]
        if not isinstance(labs, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise LabsError(
            f"{path} is not a labs status file; delete it and check your labs again"
        ) from None
    return labs


def record_status(path: Path, key: str, result: CheckResult, started: datetime) -> None:
    labs = read_status(path)
    labs[key] = {
        "status": result.status,
        "checked": started.isoformat(),  # when the check began: the files it tested
        "passed": result.passed,
        "failed": result.failed,
        "first_failure": result.first_failure,
    }
    atomic_write_text(path, json.dumps({"labs": labs}, indent=2, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------- running a check


def run_check(lab: Lab, root: Path, verbose: bool = False) -> CheckResult:
    """Run the lab's tests with pytest in a subprocess; read the outcome from its JUnit XML."""
    if lab.check is None:
        raise LabsError(
            f"{lab.page} has no check line; add one like: Check: `pytest tests/.../test_x.py`"
        )
    if importlib.util.find_spec("pytest") is None:
        raise LabsError("pytest is not installed here: run `uv sync` (it is in the dev group)")
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        # A lab's slow tests count too: `-m "slow or not slow"` undoes the project's "not slow".
        pytest = [sys.executable, "-m", "pytest", "-q", "-m", "slow or not slow"]
        command = [*pytest, f"--junitxml={xml}", *shlex.split(lab.check)]
        t0 = time.perf_counter()
        env = {**os.environ, "PYTHONIOENCODING": "utf-8"}  # the same bytes on every OS
        proc = subprocess.run(
            command, cwd=root, env=env, capture_output=True, encoding="utf-8", errors="replace"
        )
        seconds = time.perf_counter() - t0
        passed, failures = read_junit(xml) if xml.is_file() else (0, [])
    output = proc.stdout + proc.stderr
    if verbose:
        print(output.rstrip())
    if proc.returncode == 0 and passed and not failures:
        return CheckResult("passing", passed, 0, seconds, "", output)
    lines = [line for line in output.splitlines() if line.strip()]
    reason = failures[0] if failures else (lines[-1] if lines else f"exit code {proc.returncode}")
    return CheckResult("failing", passed, len(failures), seconds, reason, output)


def read_junit(path: Path) -> tuple[int, list[str]]:
    """(tests passed, ["test_name: first line of the message", ...]) from pytest's JUnit XML."""
    passed, failures = 0, []
    for case in ET.parse(path).getroot().iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            message = (problem.get("message") or problem.text or "").strip().splitlines()
            failures.append(f"{case.get('name')}: {message[0] if message else 'failed'}")
        elif case.find("skipped") is None:
            passed += 1
    return passed, failures


# ----------------------------------------------------------------------------- the learner's view


def command(text: str) -> str:
    return f"uv run python -m {__package__} {text}"


def summary(lab: Lab, result: CheckResult, next_lab: Lab | None, track: str) -> str:
    """One friendly paragraph: what happened and what to do next."""
    if result.status == "passing":
        tests = f"{result.passed} test{'s' * (result.passed != 1)}"
        text = f"Lab {lab.number} passes: {tests} passed in {result.seconds:.1f} s. "
        if next_lab is not None:
            return text + f"Next: lab {next_lab.number}, {next_lab.title} ({next_lab.page})."
        return text + (
            f"That is the last lab; labs/{track}/README.md has the project that ends the roadmap."
        )
    if result.failed:
        what = f"{result.failed} of {result.passed + result.failed} tests failed"
    else:
        what = "its tests did not run"
    first = textwrap.shorten(result.first_failure, 200, placeholder=" ...")
    return (
        f"Lab {lab.number} is not passing yet: {what}. First: {first}. "
        f"See pytest's full report with `{command(f'labs check {lab.number} --verbose')}`; "
        f"{lab.page} says what to change."
    )


def check(
    root: Path,
    track: str,
    number: str,
    status_path: Path | None = None,
    verbose: bool = False,
) -> CheckResult:
    """`labs check NN`: run, record, print the summary."""
    labs = find_labs(root, track)
    lab = find_lab(labs, number)
    started = datetime.now()
    result = run_check(lab, root, verbose)
    record_status(status_path or root / STATUS_FILE, f"{track}/{lab.number}", result, started)
    later = [other for other in labs if int(other.number) > int(lab.number)]
    print(summary(lab, result, later[0] if later else None, track))
    return result


def listing(root: Path, track: str, status_path: Path | None = None) -> list[dict[str, Any]]:
    """Every lab with its status, as plain data (`labs --json`)."""
    statuses = read_status(status_path or root / STATUS_FILE)
    rows = []
    for lab in find_labs(root, track):
        seen = statuses.get(f"{track}/{lab.number}", {})
        row = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(lab).items()}
        row |= {"status": seen.get("status", NOT_TRIED), "checked": seen.get("checked")}
        row["edited_since"] = bool(seen) and edited_since(lab, root, track, seen["checked"])
        rows.append(row)
    return rows


def edited_since(lab: Lab, root: Path, track: str, checked: str) -> bool:
    """Whether the lab's tests or the track's code changed after its last check began."""
    try:
        when = datetime.fromisoformat(checked).timestamp()
    except (TypeError, ValueError):
        return False
    paths = [root / a.split("::")[0] for a in shlex.split(lab.check or "") if a[:1] != "-"]
    paths.append(Path(__file__).parent / track)  # this track's package: src/<package>/<track>
    files = [p for p in paths if p.is_file()]
    files += [f for p in paths if p.is_dir() for f in p.rglob("*.py")]
    return any(f.stat().st_mtime > when for f in files)


def columns(text: str) -> int:
    """Terminal columns `text` takes: Chinese characters are two columns wide."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def print_listing(rows: list[dict[str, Any]], track: str) -> None:
    print(f"Labs of the {track} track (the 12-week map: labs/{track}/README.md)\n")
    width = max((columns(row["title"]) for row in rows), default=0)
    for row in rows:
        title = row["title"] + " " * (width - columns(row["title"]))
        when = f"  checked {row['checked'].replace('T', ' ')[:16]}" if row["checked"] else ""
        if row["edited_since"]:
            when += ", edited since: check again"
        print(f"  {row['number']}  {title}  {row['status']:<9}{when}")
    todo = [row for row in rows if row["status"] != "passing" or row["edited_since"]]
    if not rows:
        print("  (no lab pages yet)")
    elif todo:
        print(
            f"\nNext: read {todo[0]['page']}, then `{command('labs check ' + todo[0]['number'])}`."
        )
    else:
        print(f"\nEvery lab passes. The roadmap ends with a project: labs/{track}/README.md.")


# ----------------------------------------------------------------------------- lab commands


def delegate(package: str, module: str):
    """A command handler that runs `<package>.<module>.cli(args)`, importing the module only
    when the command runs, so `--help` stays fast (no torch import)."""

    def handler(args: argparse.Namespace) -> int:
        return importlib.import_module(f".{module}", package).cli(args)

    return handler


def add_settings_arguments(parser: argparse.ArgumentParser, example: str) -> None:
    """--config, --set and --json, the same on every lab command."""
    parser.add_argument("--config", type=Path, help=f"YAML file of settings, e.g. {example}")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one setting, e.g. --set seed=1 (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def load_settings(settings: Any, path: Path | None, overrides: list[str]) -> Any:
    """A lab's settings dataclass: its defaults <- the YAML file <- `key=value` overrides."""
    from .config import ConfigError, check_all, load_into, read_yaml_mapping

    if path is not None:
        load_into(settings, read_yaml_mapping(path, "a mapping of settings (key: value)"))
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value (e.g. seed=1), got {item!r}")
        load_into(settings, {key.strip(): value.strip()})
    check_all(settings)
    return settings


# ----------------------------------------------------------------------------- command line


def cmd_list(args: argparse.Namespace) -> int:
    track = current_track()
    rows = listing(project_root(), track)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        print_listing(rows, track)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    track, root = current_track(), project_root()
    if args.all:
        results = []
        for lab in find_labs(root, track):
            results.append(check(root, track, lab.number, verbose=args.verbose))
            print()
        passing = sum(r.status == "passing" for r in results)
        print(f"{passing} of {len(results)} labs pass.")
        return 0 if passing == len(results) else 1
    if args.number is None:
        raise LabsError("say which lab to check, e.g. `labs check 01`, or use --all")
    return 0 if check(root, track, args.number, verbose=args.verbose).status == "passing" else 1


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `labs` and `labs check` on the CLI's subparsers."""
    labs = subparsers.add_parser(
        "labs", help="your track's labs in order, with their status (`labs check NN`)"
    )
    labs.add_argument("--json", action="store_true", help="print JSON instead of text")
    labs.set_defaults(func=cmd_list)
    sub = labs.add_subparsers(dest="labs_command", metavar="check")
    p = sub.add_parser("check", help="run a lab's tests and record whether it passes")
    p.add_argument("number", nargs="?", metavar="NN", help="the lab's number, e.g. 01")
    p.add_argument("--all", action="store_true", help="check every lab, in order")
    p.add_argument("-v", "--verbose", action="store_true", help="also show pytest's output")
    p.set_defaults(func=cmd_check)
    return labs
