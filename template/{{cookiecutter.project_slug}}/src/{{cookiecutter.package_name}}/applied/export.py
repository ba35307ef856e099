"""Lab 05: a trained classifier as a standard Hugging Face folder, to load anywhere.

`applied export RUN_DIR` writes, from the run's newest checkpoint:
- a full fine-tuning run: `model/`, loadable with
  `AutoModelForSequenceClassification.from_pretrained("RUN_DIR/export/model")`;
- a LoRA run: `adapter/` (the adapters and the new head only: a few hundred kB, load it over
  the same base encoder with `PeftModel.from_pretrained(base, "RUN_DIR/export/adapter")`) and
  `merged/` (the adapters folded into the base weights: a plain model again, as fast as one).
Label names travel inside config.json (`id2label`). The folder is written under a temporary
name and renamed at the end, so a crash leaves no half-written export.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..errors import UserError
from .encoder import quiet_transformers
from .predict import load_classifier


def export(run_dir: Path, out: Path | None = None) -> dict[str, Path]:
    """Write the export folders; returns {"model" | "adapter" | "merged": folder}."""
    out = Path(out) if out is not None else Path(run_dir) / "export"
    if out.exists():
        raise UserError(f"{out} already exists; remove it or give another --out")
    classifier = load_classifier(run_dir)
    model, tokenizer = classifier.model, classifier.tokenizer
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial"  # left by a crash? start it again
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        written = {}
        with quiet_transformers():
            if hasattr(model, "merge_and_unload"):  # a peft model: adapters over a frozen base
                model.save_pretrained(staging / "adapter")
                tokenizer.save_pretrained(staging / "adapter")
                written["adapter"] = out / "adapter"
                model = model.merge_and_unload()
                name = "merged"
            else:
                name = "model"
            model.save_pretrained(staging / name)
            tokenizer.save_pretrained(staging / name)
        written[name] = out / name
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written


def cli(args: Any) -> int:
    for name, folder in export(args.run_dir, args.out).items():
        print(f"{name}: {folder}")
    return 0
