"""The text task: a GPT learns to predict the next character of a corpus.

The corpus is read with the project's one text reader (`files.py`): binary and non-UTF-8 files
in a folder are skipped, each named once in a warning; a single such file is refused.
The vocabulary (`Codec`) is built from the corpus once and saved in every checkpoint, so a
resumed run keeps its token ids even if the files changed (a changed corpus is reported).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import UserError
from ..files import NotText, read_text_file
from .base import Task

log = logging.getLogger(__name__)
WORD = re.compile(r"[^\W\d_]+")  # a run of letters, in any script


class DataError(UserError):
    """The configured data cannot be read."""


@dataclass
class Codec:
    """Maps text <-> token ids. `chars` empty means byte-level (256 ids, any text)."""

    chars: str = ""

    @classmethod
    def from_text(cls, text: str, level: str = "char") -> Codec:
        return cls("" if level == "byte" else "".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars) if self.chars else 256

    def encode(self, text: str) -> list[int]:
        if not self.chars:
            return list(text.encode("utf-8"))
        stoi = {c: i for i, c in enumerate(self.chars)}
        return [stoi[c] for c in text if c in stoi]  # unknown characters are dropped

    def decode(self, ids: list[int]) -> str:
        if not self.chars:
            return bytes(ids).decode("utf-8", errors="replace")
        return "".join(self.chars[i] for i in ids if 0 <= i < len(self.chars))

    def to_dict(self) -> dict[str, Any]:
        return {"chars": self.chars}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Codec:
        return cls(d.get("chars", ""))


def read_corpus(path: str | Path, extensions: list[str] | tuple[str, ...] = (".md", ".txt")) -> str:
    """One text file, or every matching file under a folder (sorted, so runs repeat)."""
    p = Path(path)
    if p.is_file():
        try:
            return read_text_file(p)
        except NotText as exc:
            raise DataError(f"data.path {str(p)!r} cannot be used: {exc}") from None
    if not p.is_dir():
        raise DataError(
            f"data path {str(p)!r} not found (relative paths start at the current directory: "
            "run from the project root or pass --set data.path=FILE_OR_FOLDER)"
        )
    exts = {e.lower() for e in extensions}
    texts, skipped = [], []
    for f in sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in exts):
        try:
            texts.append(read_text_file(f))
        except (NotText, OSError) as exc:
            log.warning("skipped %s: %s", f, exc)
            skipped.append(f)
    if skipped:
        log.warning("%d of %d files skipped in %s", len(skipped), len(texts) + len(skipped), p)
    if not texts:
        raise DataError(f"no text found in {str(p)!r} (looked for {', '.join(extensions)})")
    return "\n\n".join(texts)


class GPTTask(Task):
    """Shared by the tasks a GPT learns: builds the model from `cfg.model`, samples text."""

    codec: Codec

    def build_model(self) -> Any:
        from ..models.gpt import GPT

        m = self.cfg.model
        if m.vocab_size == 0:
            m.vocab_size = self.codec.vocab_size  # resolved, so config.yaml records it
        elif m.vocab_size < self.codec.vocab_size:
            raise DataError(
                f"model.vocab_size {m.vocab_size} < data vocabulary {self.codec.vocab_size}"
            )
        return GPT(m)

    def state_dict(self) -> dict[str, Any]:
        return {"codec": self.codec.to_dict()}

    def flops_per_unit(self, model: Any) -> float:
        """6N + 12*L*T*C FLOPs per token for a forward and backward pass (PaLM, appendix B)."""
        m = self.cfg.model
        return 6 * model.num_params() + 12 * m.n_layer * m.block_size * m.n_embd


class TextTask(GPTTask):
    """Next-token prediction on a corpus, stored as one compact tensor of token ids.

    A batch is gathered from random offsets, so memory is ~1-4 bytes per character and nothing
    is copied per epoch.
    """

    name = "text"

    def __init__(self, cfg: Config, state: dict[str, Any] | None = None):
        super().__init__(cfg, state)
        self.text = self.read(cfg)
        saved = (state or {}).get("codec")
        self.codec = (
            Codec.from_dict(saved) if saved else Codec.from_text(self.text, cfg.data.tokenizer)
        )
        self.block_size = cfg.model.block_size
        self.splits = self._split(self.codec.encode(self.text), cfg.data.val_fraction)

    def read(self, cfg: Config) -> str:
        return read_corpus(cfg.data.path, cfg.data.extensions)

    def fingerprint(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    def _split(self, ids: list[int], val_fraction: float) -> dict[str, Any]:
        import torch

        dtype = torch.uint8 if self.codec.vocab_size <= 256 else torch.int32
        data = torch.tensor(ids, dtype=dtype)
        n_val = max(int(len(data) * val_fraction), self.block_size + 2)
        if len(data) - n_val < self.block_size + 2:
            raise DataError(
                f"corpus too small: {len(data)} tokens for block_size {self.block_size}; "
                "add text or lower model.block_size"
            )
        self._offsets = torch.arange(self.block_size + 1)
        return {"train": data[:-n_val], "val": data[-n_val:]}

    def get_batch(self, split: str, batch_size: int, generator: Any, device: str) -> tuple:
        import torch

        data = self.splits[split]
        starts = torch.randint(
            len(data) - self.block_size - 1, (batch_size, 1), generator=generator
        )
        chunk = data[starts + self._offsets].long()  # (B, block_size + 1)
        x, y = chunk[:, :-1], chunk[:, 1:]
        if device.startswith("cuda"):  # pinned memory lets the copy overlap with compute
            return (
                x.pin_memory().to(device, non_blocking=True),
                y.pin_memory().to(device, non_blocking=True),
            )
        return x.to(device), y.to(device)

    def report(self, model: Any, device: str) -> dict[str, Any]:
        """A text sample from a fixed seed, and the share of its words found in the corpus."""
        n = self.cfg.train.sample_tokens
        if n <= 0:
            return {}
        sample = generate_sample(model, self.codec, n, device)
        known = set(WORD.findall(self.text))
        words = WORD.findall(sample)
        share = sum(w in known for w in words) / len(words) if words else 0.0
        return {"sample": sample, "sample_word_share": round(share, 3)}


class DatasetsTextTask(TextTask):
    """The text task over Hugging Face `datasets.load_dataset("text", data_files=path)`.

    Works with local files (offline) and, where the network allows, hub datasets. `datasets`
    is an optional extra (`pip install datasets`), imported only here.
    """

    name = "datasets"

    def read(self, cfg: Config) -> str:
        try:
            from datasets import load_dataset
        except ImportError:
            raise DataError(
                "data.kind=datasets needs the optional 'datasets' package: pip install datasets"
            ) from None
        ds = load_dataset("text", data_files=cfg.data.path, split="train")
        return "\n".join(ds["text"])


def generate_sample(model: Any, codec: Codec, n_tokens: int, device: str) -> str:
    """A short generation from a fixed seed, so reports of different runs are comparable."""
    import torch

    model.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        start = torch.zeros((1, 1), dtype=torch.long, device=device)
        out = model.generate(start, n_tokens, temperature=0.8, top_k=None)
    model.train()
    return codec.decode(out[0].tolist())
