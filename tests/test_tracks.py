"""The track switch: folders named after a track, wherever they are, exist only in that track.

copier.yml has one single-line `_exclude` entry per track (`theory`, without a slash, matches a
folder of that name at any depth); Cookiecutter's post-generation hook deletes what the same entries
match. These tests hold both engines, the newest and the oldest declared, to that rule on a copy of
the template with probe files in track folders at several depths.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, snapshot_template
from .rendering import (
    SKELETON,
    TRACKS,
    render_both,
    render_oldest_cookiecutter,
    render_oldest_copier,
)

# Under pytest-xdist (`-n 2 --dist loadgroup`) these tests share one worker, so the
# session-wide renders run once.
pytestmark = pytest.mark.xdist_group("tracks")
COPIER = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
# Probe files (path in the skeleton: the track they belong to, or None for every track).
PROBES = {
    "src/{{cookiecutter.package_name}}/theory/zz_probe.txt": "theory",
    "configs/applied/zz_probe.txt": "applied",
    "labs/systems/zz_probe.txt": "systems",
    "docs/deep/er/theory/zz_probe.txt": "theory",
    "tests/applied/nested/zz_probe.txt": "applied",
    # Only a whole path component counts: these stay in every track.
    "notes/applied_notes.txt": None,
    "notes/theory-systems/zz_probe.txt": None,
}


def test_exclude_entries_are_single_lines():
    """Copier splits a multi-line entry into paths only from 9.18; older ones keep the files."""
    multi = [entry for entry in COPIER["_exclude"] if "\n" in entry.strip()]
    assert not multi


def test_one_exclude_entry_per_track():
    for track in TRACKS:
        entry = f"{{% if cookiecutter.track != '{track}' %}}{track}{{% endif %}}"
        assert entry in COPIER["_exclude"]


def test_no_other_path_component_uses_a_track_name(template):
    """A track name as a path component is a track folder and nothing else: no file named
    `theory`, no package named `applied`, no track folder inside another track's folder."""
    root = template / SKELETON
    problems = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        named = [part for part in parts if part in TRACKS]
        if not named:
            continue
        if len(set(named)) > 1:
            problems.append(f"{'/'.join(parts)}: in folders of two tracks")
        if path.is_file() and parts[-1] in TRACKS:
            problems.append(f"{'/'.join(parts)}: a file named after a track")
    assert not problems


@pytest.fixture(scope="module")
def probed(tmp_path_factory) -> Path:
    """A snapshot of the template with the probe files added to its skeleton."""
    extra = {f"{SKELETON}/{path}": f"probe for {track}\n" for path, track in PROBES.items()}
    return snapshot_template(tmp_path_factory.mktemp("probed"), extra)


def kept_probes(project: Path, package: str) -> set[str]:
    return {
        path
        for path in PROBES
        if (project / path.replace("{{cookiecutter.package_name}}", package)).is_file()
    }


def expected_probes(track: str) -> set[str]:
    return {path for path, owner in PROBES.items() if owner in (None, track)}


@pytest.mark.parametrize("track", TRACKS)
def test_newest_engines_keep_only_the_chosen_track(probed, tmp_path, track):
    answers = {"project_name": "Track Probe", "track": track}
    copier_out, cookie_out = render_both(probed, tmp_path, answers)
    assert kept_probes(copier_out, "track_probe") == expected_probes(track)
    assert kept_probes(cookie_out, "track_probe") == expected_probes(track)


def test_oldest_engines_keep_only_the_chosen_track(probed, tmp_path):
    answers = {"project_name": "Track Probe", "track": "theory"}
    old_copier = render_oldest_copier(probed, tmp_path / "copier", answers, tmp_path / "home")
    old_cookie = render_oldest_cookiecutter(probed, tmp_path / "cc", answers, tmp_path / "home")
    assert kept_probes(old_copier, "track_probe") == expected_probes("theory")
    assert kept_probes(old_cookie, "track_probe") == expected_probes("theory")
