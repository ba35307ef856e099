"""The demo's Attention tab (theory track, lab 05): what the newest trained model looks at.

The core demo (demo.py) finds this module and calls `add_tab(gr, runs_dir)`; a project rendered
without the demo has no such file. Type a prompt, press Show: the picture is the grid of
`theory attention` (rows = layers, columns = heads) and the text says where the last character
looks most. The API name is `attention`. What the button does is a plain method
(`AttentionHandler.show`), so tests call it without a server.
"""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path
from typing import Any

from ..demo import _check_text, _user_error, checkpoint_files, skipped_note
from ..errors import UserError

log = logging.getLogger(__name__)

PACKAGE = __package__.rsplit(".", 1)[0]
TRAIN_COMMAND = f"python -m {PACKAGE} train --config configs/addition.yaml"
API_NAMES = ("attention",)  # the endpoints this tab adds to the demo's API
EXAMPLE_PROMPT = "12+34="
MAX_PROMPT_CHARS = 200  # the model sees at most block_size of them (64 for tiny.yaml)


class AttentionHandler:
    """Prompt -> attention picture and summary, from the newest readable model under runs_dir.

    The model is loaded on the CPU (one short forward pass per request) and kept until a
    checkpoint under runs_dir appears, changes or goes away, as the Generate tab does.
    """

    def __init__(self, runs_dir: str | Path = "runs"):
        self.runs_dir = Path(runs_dir)
        self._lock = threading.Lock()
        # (checkpoint files seen, model, codec, checkpoint used, note) once a model is loaded
        self._model: tuple[frozenset, Any, Any, Path, str] | None = None

    def newest_model(self) -> tuple[Any, Any, Path, str] | None:
        """(model, codec, checkpoint, note) of the newest readable checkpoint, or None."""
        from ..sample import load_newest_model

        files = checkpoint_files(self.runs_dir)
        if not files:
            return None
        with self._lock:
            if self._model is None or self._model[0] != files:
                model, codec, path, skipped = load_newest_model(self.runs_dir, "cpu")
                self._model = (files, model, codec, path, skipped_note(skipped, path))
            return self._model[1:]

    def show(self, prompt: str) -> tuple[Any, str]:
        """Prompt -> (the picture as a PIL image, or None when there is no model; a text)."""
        import torch
        from PIL import Image

        from . import attention

        prompt = _check_text(prompt, "prompt", MAX_PROMPT_CHARS, required=False)
        try:
            loaded = self.newest_model()
        except UserError as exc:  # no readable checkpoint: the message says what to do
            raise _user_error(f"Could not load the trained model: {exc}") from None
        if loaded is None:
            return None, (
                f"No trained model yet (no checkpoint under {self.runs_dir.as_posix()}/). "
                f"Train one with:\n\n    {TRAIN_COMMAND}\n\nthen press Show again."
            )
        model, codec, path, note = loaded
        try:
            ids, cut = attention.encode_prompt(codec, prompt, model.config.block_size)
            maps = attention.attention_maps(model, torch.tensor(ids))
            tokens = attention.token_texts(codec, ids)
            title = f"{path.parent.parent.name}: {attention.visible(''.join(tokens))}"
            picture = Image.open(io.BytesIO(attention.attention_png(maps, tokens, title)))
        except UserError as exc:  # an empty prompt, an unknown character: what to type instead
            raise _user_error(str(exc)[:1].upper() + str(exc)[1:] + ".") from None
        except Exception as exc:
            log.exception("drawing the attention failed")  # a bug: details go to the terminal
            raise _user_error(f"Could not draw the attention: {exc}") from None
        lines = [note, f"Note: {cut}." if cut else "", f"Model: {path.as_posix()}"]
        lines.append(attention.describe(maps, tokens))
        return picture, "\n\n".join(line for line in lines if line)


def add_tab(gr: Any, runs_dir: str | Path) -> None:
    """The Attention tab; called by demo.build_app inside its gr.Blocks."""
    handler = AttentionHandler(runs_dir)
    with gr.Tab("Attention"):
        gr.Markdown(
            "What each head of each layer of the newest trained model looks at (lab 05): row = "
            "the character looking, column = the character looked at. No model yet? Run "
            f"`{TRAIN_COMMAND}`."
        )
        prompt = gr.Textbox(label="Prompt", value=EXAMPLE_PROMPT, max_length=MAX_PROMPT_CHARS)
        button = gr.Button("Show", variant="primary")
        picture = gr.Image(label="Attention maps", type="pil", format="png", interactive=False)
        summary = gr.Textbox(label="Where the last character looks", lines=8, interactive=False)
        button.click(
            handler.show,
            prompt,
            [picture, summary],
            api_name=API_NAMES[0],
            concurrency_limit=1,  # CPU-bound, and short: one picture at a time
            concurrency_id="attention",
        )
