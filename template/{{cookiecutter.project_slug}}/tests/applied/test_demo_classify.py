"""The demo's Classify tab (applied/demo_tab.py): its handler called directly, then served.

Every classifier here is trained for real on the tiny encoder (tests/applied/conftest.py).
Skipped in a project rendered without the demo (it has no demo_tab.py and no Gradio).
"""

import csv
import os
import shutil

import pytest

from {{ cookiecutter.package_name }}.applied.predict import load_classifier
from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.train import run

from ..conftest import PACKAGE, PROJECT_ROOT, small_overrides
from .conftest import TOPICS

demo_tab = pytest.importorskip(f"{PACKAGE}.applied.demo_tab", reason="this project has no demo")
gr = pytest.importorskip("gradio")
demo = pytest.importorskip(f"{PACKAGE}.demo")

ClassifyHandler = demo_tab.ClassifyHandler
TEXT = "why is my loss curve flat after the update"


def copy_run(run_dir, runs_dir):
    """A copy of a finished run under runs_dir (its checkpoints keep their times)."""
    return shutil.copytree(run_dir, runs_dir / run_dir.name)


@pytest.fixture(scope="module")
def runs_dir(classify_run, tmp_path_factory):
    """A runs folder of its own holding a copy of the session's trained classifier."""
    runs = tmp_path_factory.mktemp("demo-runs")
    copy_run(classify_run, runs)
    return runs


def train_text_run(runs_dir):
    """A tiny GPT trained on the docs for 5 steps: a run of another task, with a checkpoint."""
    steps = {"train.max_steps": 5, "train.eval_interval": 5, "train.checkpoint_interval": 5}
    return run(load_config(None, small_overrides(**steps, **{"train.sample_tokens": 0})), runs_dir)


def test_the_demo_finds_the_tab_by_looking(tmp_path):
    assert demo.track_tabs() == [demo_tab]
    app = demo.build_app(None, tmp_path)
    names = {fn.api_name for fn in app.fns.values() if fn.api_visibility == "public"}
    assert names == {"generate", "environment", *demo_tab.API_NAMES}


def test_classify_answers_with_the_newest_classifier(runs_dir, classify_run):
    handler = ClassifyHandler(runs_dir)
    probabilities, note = handler.classify(TEXT)
    assert list(probabilities) == sorted(probabilities, key=probabilities.get, reverse=True)
    assert set(probabilities) == set(TOPICS)
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    expected = load_classifier(classify_run).predict([TEXT])[0]
    assert probabilities == pytest.approx(expected, abs=1e-4)
    assert max(probabilities, key=probabilities.get) == "training"  # it learnt the topics
    assert f"run `{classify_run.name}`" in note and "checkpoint `step_0000030.pt`" in note
    assert "(step 30)" in note and "3 labels" in note
    # Loaded once: the next texts use the same model until a checkpoint changes.
    classifier = handler.newest_classifier()
    handler.classify("help with pip wheel")
    assert handler.newest_classifier() is classifier


def test_without_a_classify_run_the_note_names_the_command(tmp_path):
    for runs in (tmp_path / "runs", tmp_path):  # no runs folder; an empty one
        probabilities, note = ClassifyHandler(runs).classify(TEXT)
        assert probabilities is None
        assert "No classifier yet" in note and demo_tab.TRAIN_COMMAND in note
    assert demo_tab.TRAIN_COMMAND.endswith("train --config configs/applied/classify.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Type a text first"),
        ("  \n ", "Type a text first"),
        (5, "The text must be text"),
        (None, "The text must be text"),
        ("a" * 2001, "The text is too long (2001 characters; at most 2000)"),
    ],
)
def test_classify_refuses_bad_input_with_a_message(runs_dir, text, message):
    handler = ClassifyHandler(runs_dir)
    with pytest.raises(gr.Error, match=message.replace("(", r"\(").replace(")", r"\)")):
        handler.classify(text)
    probabilities, _ = handler.classify("a" * 2000)  # the limit itself is fine; still serving
    assert set(probabilities) == set(TOPICS)


def test_a_newer_classify_run_replaces_the_cached_one(
    runs_dir, tiny_encoder, labelled_csv, tmp_path, monkeypatch
):
    runs = tmp_path / "runs"
    old = copy_run(next(runs_dir.iterdir()), runs)
    handler = ClassifyHandler(runs)
    first = handler.newest_classifier()
    assert first.run_dir == old
    # Other labels, so that the answer shows which model gave it.
    relabelled = tmp_path / "relabelled.csv"
    with open(labelled_csv, newline="", encoding="utf-8") as f:
        rows = [{**row, "label": f"new-{row['label']}"} for row in csv.DictReader(f)]
    with open(relabelled, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    monkeypatch.chdir(PROJECT_ROOT)  # the config path is the one the tab's note tells you to run
    new = run(
        config_file="configs/applied/classify.yaml",
        overrides=[
            f"model.name={tiny_encoder}",
            "model.max_length=32",
            f"data.path={relabelled}",
            "train.device=cpu",
            "train.max_steps=4",
            "train.eval_interval=4",
            "train.checkpoint_interval=4",
        ],
        runs_dir=runs,
    )
    probabilities, note = handler.classify(TEXT)
    assert set(probabilities) == {f"new-{label}" for label in TOPICS}
    assert f"run `{new.name}`" in note and "(step 4)" in note
    assert handler.newest_classifier() is not first
    # Back to the older run when the newer one goes away.
    shutil.rmtree(new)
    probabilities, note = handler.classify(TEXT)
    assert set(probabilities) == set(TOPICS) and f"run `{old.name}`" in note


def test_runs_of_other_tasks_are_ignored(runs_dir, tmp_path):
    runs = tmp_path / "runs"
    text_run = train_text_run(runs)
    probabilities, note = ClassifyHandler(runs).classify(TEXT)
    assert probabilities is None and demo_tab.TRAIN_COMMAND in note
    # A classify run whose checkpoint is older than the text run's still answers.
    old = copy_run(next(runs_dir.iterdir()), runs)
    newest_text = max(p.stat().st_mtime for p in (text_run / "checkpoints").iterdir())
    assert all(p.stat().st_mtime < newest_text for p in (old / "checkpoints").iterdir())
    probabilities, note = ClassifyHandler(runs).classify(TEXT)
    assert set(probabilities) == set(TOPICS) and f"run `{old.name}`" in note


def test_an_unreadable_newer_checkpoint_is_skipped_and_said(runs_dir, tmp_path):
    copied = copy_run(next(runs_dir.iterdir()), tmp_path / "runs")
    (copied / "checkpoints" / "step_0000099.pt").write_bytes(os.urandom(2000))
    probabilities, note = ClassifyHandler(tmp_path / "runs").classify(TEXT)
    assert set(probabilities) == set(TOPICS)
    assert "checkpoint `step_0000030.pt`" in note
    assert "the newer checkpoint `step_0000099.pt` is unreadable" in note


def test_only_unreadable_checkpoints_is_a_message(runs_dir, tmp_path):
    copied = copy_run(next(runs_dir.iterdir()), tmp_path / "runs")
    for checkpoint in (copied / "checkpoints").iterdir():
        checkpoint.write_bytes(os.urandom(2000))
    handler = ClassifyHandler(tmp_path / "runs")
    with pytest.raises(gr.Error, match="Could not load the classifier: every checkpoint in"):
        handler.classify(TEXT)


def test_the_served_app_answers_the_classify_api(runs_dir, classify_run):
    """The real app on a loopback port, called the way any client would."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    app = demo.build_app(None, runs_dir)
    app.launch(
        server_name="127.0.0.1", server_port=demo.free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        client = Client(app.local_url, verbose=False)
        label, note = client.predict(TEXT, api_name="/classify")
        expected = load_classifier(classify_run).predict([TEXT])[0]
        assert label["label"] == next(iter(expected))
        got = {c["label"]: c["confidence"] for c in label["confidences"]}
        assert got == pytest.approx(expected, abs=1e-4)
        assert f"run `{classify_run.name}`" in note
        with pytest.raises(AppError, match="Type a text first"):
            client.predict("", api_name="/classify")
        with pytest.raises(AppError, match="too long"):
            client.predict("a" * 2001, api_name="/classify")
        label, _ = client.predict("help with pip wheel", api_name="/classify")  # still serving
        assert label["label"] in TOPICS
    finally:
        app.close()
