"""A trained classifier, loaded from its run folder: texts in, label probabilities out.

The demo's Classify tab and `applied predict RUN_DIR TEXT...` use it. The model is rebuilt from
the run's own config (the same encoder, LoRA or not) and its newest good checkpoint, loaded with
`weights_only=True`; the labels come from the checkpoint, not from a data file that may have
changed since.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ..checkpoint import list_checkpoints, load_latest
from ..config import from_dict
from ..errors import UserError
from ..report import run_task
from .encoder import build_classifier, class_probabilities, load_tokenizer


class Classifier:
    def __init__(self, run_dir: Path, device: str = "cpu"):
        state, self.checkpoint = load_latest(run_dir, map_location=device)
        kind = ((state.get("config") or {}).get("data") or {}).get("kind")
        if kind != "classify":
            raise UserError(
                f"{run_dir} is a {kind!r} run; give a classify run "
                "(train --config configs/applied/classify.yaml)"
            )
        self.cfg = from_dict(state["config"])
        self.labels: list[str] = list(state["task"]["labels"])
        self.run_dir, self.device, self.step = run_dir, device, state["step"]
        self.tokenizer = load_tokenizer(self.cfg.model.name)
        self.model = build_classifier(self.cfg.model, self.labels)
        self.model.load_state_dict(state["model"])
        self.model.to(device).eval()

    def probabilities(self, texts: list[str]) -> Any:
        """(len(texts), classes) tensor of probabilities."""
        return class_probabilities(
            self.model, self.tokenizer, texts, self.cfg.model.max_length, self.device
        )

    def predict(self, texts: list[str]) -> list[dict[str, float]]:
        """For each text: {label: probability}, most likely first."""
        out = []
        for row in self.probabilities(texts).tolist():
            ranked = sorted(zip(self.labels, row, strict=True), key=lambda pair: -pair[1])
            out.append({label: round(p, 6) for label, p in ranked})
        return out


def load_classifier(run_dir: str | Path, device: str = "cpu") -> Classifier:
    path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"{path} is not a run folder (train writes runs/<name>/)")
    return Classifier(path, device)


def newest_classify_run(runs_dir: str | Path) -> Path | None:
    """The classify run under runs_dir with the newest checkpoint, or None."""
    runs = Path(runs_dir)
    if not runs.is_dir():
        return None
    found = []
    for run in runs.iterdir():
        if run.is_dir() and run_task(run) == "classify":
            for ckpt in list_checkpoints(run)[-1:]:
                with contextlib.suppress(OSError):  # deleted meanwhile: training keeps few
                    found.append((ckpt.stat().st_mtime, run))
    return max(found)[1] if found else None


def cli(args: Any) -> int:
    import json

    classifier = load_classifier(args.run_dir)
    results = classifier.predict(args.texts)
    if args.json:
        pairs = zip(args.texts, results, strict=True)
        print(json.dumps([{"text": t, "probabilities": r} for t, r in pairs], indent=2))
        return 0
    for text, ranked in zip(args.texts, results, strict=True):
        top = ", ".join(f"{label} {p:.2f}" for label, p in list(ranked.items())[:3])
        print(f"{next(iter(ranked))}\t{text}\t({top})")
    return 0
