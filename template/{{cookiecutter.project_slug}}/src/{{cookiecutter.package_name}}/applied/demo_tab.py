"""The demo's Classify tab (applied track, lab 08): the newest fine-tuned classifier, live.

The core demo (demo.py) finds this module and calls `add_tab(gr, runs_dir)`; a project rendered
without the demo has no such file. Type a text, press Classify: the bars show the most likely
labels with their probabilities, and the note says which run and checkpoint answered. Only
classify runs count (`data.kind: classify`); the newest of them answers. The API name is
`classify`. What the button does is a plain method (`ClassifyHandler.classify`), so tests call
it without a server.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from ..demo import _check_text, _user_error
from ..errors import UserError

log = logging.getLogger(__name__)

PACKAGE = __package__.rsplit(".", 1)[0]
TRAIN_COMMAND = f"python -m {PACKAGE} train --config configs/applied/classify.yaml"
API_NAMES = ("classify",)  # the endpoints this tab adds to the demo's API
EXAMPLE_TEXT = "How do I resume a training run that stopped halfway?"
MAX_TEXT_CHARS = 2000  # the encoder reads at most model.max_length tokens of it anyway
TOP_CLASSES = 5  # labels shown on the page and sent by the API (the handler gives all)


def checkpoint_stamps(run_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, mtime and size of each checkpoint of a run: the classifier reloads when they change."""
    from ..checkpoint import list_checkpoints

    stamps = []
    for path in list_checkpoints(run_dir):
        try:
            stat = path.stat()
        except OSError:  # deleted meanwhile: training keeps only the newest few
            continue
        stamps.append((path.name, stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


class ClassifyHandler:
    """Text -> label probabilities, from the newest classify run under runs_dir.

    The classifier is loaded once and kept until the newest classify run changes: another run
    gets a newer checkpoint, or this one's checkpoints change. Runs of other tasks (a GPT trained
    on text, say) are ignored. One text is classified at a time (a lock): a forward pass takes
    milliseconds, and a Hugging Face tokenizer must not be used by two threads at once.
    """

    def __init__(self, runs_dir: str | Path = "runs"):
        self.runs_dir = Path(runs_dir)
        self._lock = threading.RLock()  # classify holds it while it asks newest_classifier
        # ((run folder, its checkpoint stamps), classifier) once a classifier is loaded
        self._loaded: tuple[tuple[Path, tuple], Any] | None = None

    def newest_classifier(self) -> Any:
        """The `Classifier` (applied/predict.py) of the newest classify run, or None.

        A UserError (every checkpoint unreadable, the encoder folder gone) says what to do.
        """
        from ..device import pick_device
        from .predict import load_classifier, newest_classify_run

        with self._lock:
            run = newest_classify_run(self.runs_dir)
            if run is None:
                self._loaded = None
                return None
            seen = (run, checkpoint_stamps(run))
            if self._loaded is None or self._loaded[0] != seen:
                self._loaded = None  # free the old model before loading the new one
                # The GPU when there is one (or AI_DEVICE=...), like training and Generate.
                self._loaded = (seen, load_classifier(run, pick_device()))
            return self._loaded[1]

    def classify(self, text: str) -> tuple[dict[str, float] | None, str]:
        """Text -> ({label: probability} for every label, most likely first; a Markdown note).

        Without a classify run: (None, a note with the command that trains one).
        """
        text = _check_text(text, "text", MAX_TEXT_CHARS)
        with self._lock:
            try:
                classifier = self.newest_classifier()
            except UserError as exc:  # unreadable checkpoints, a missing encoder: what to do
                raise _user_error(f"Could not load the classifier: {exc}") from None
            except Exception as exc:
                log.exception("loading the classifier failed")  # a bug: details to the terminal
                raise _user_error(f"Could not load the classifier: {exc}") from None
            if classifier is None:
                return None, (
                    f"No classifier yet (no classify run under `{self.runs_dir.as_posix()}/`). "
                    f"Train one with:\n\n    {TRAIN_COMMAND}\n\nthen press Classify again."
                )
            try:
                probabilities = classifier.predict([text])[0]
            except Exception as exc:
                log.exception("classifying failed")
                raise _user_error(f"Could not classify the text: {exc}") from None
        return probabilities, self.note(classifier)

    @staticmethod
    def note(classifier: Any) -> str:
        """Which run and checkpoint answered (and whether a newer checkpoint was unreadable)."""
        from ..checkpoint import list_checkpoints

        run, used = classifier.run_dir, classifier.checkpoint
        lines = [
            f"Answered by run `{run.name}`, checkpoint `{used.name}` (step {classifier.step}), "
            f"{len(classifier.labels)} labels."
        ]
        newest = list_checkpoints(run)[-1:]
        if newest and newest[0] != used:  # load_latest skipped it; the terminal says why
            lines.append(f"Note: the newer checkpoint `{newest[0].name}` is unreadable.")
        return "\n\n".join(lines)


def add_tab(gr: Any, runs_dir: str | Path) -> None:
    """The Classify tab; called by demo.build_app inside its gr.Blocks."""
    handler = ClassifyHandler(runs_dir)
    with gr.Tab("Classify"):
        gr.Markdown(
            "Route a text with the newest fine-tuned classifier (lab 08): the most likely labels "
            f"and their probabilities. No classifier yet? Run `{TRAIN_COMMAND}`."
        )
        text = gr.Textbox(label="Text", value=EXAMPLE_TEXT, lines=3, max_length=MAX_TEXT_CHARS)
        button = gr.Button("Classify", variant="primary")
        labels = gr.Label(label="Labels", num_top_classes=TOP_CLASSES)
        note = gr.Markdown(label="Answered by")  # the label names it in the API, not on the page
        button.click(
            handler.classify,
            text,
            [labels, note],
            api_name=API_NAMES[0],
            concurrency_limit=1,  # one text at a time (the handler's lock serialises them anyway)
            concurrency_id="classify",
        )
