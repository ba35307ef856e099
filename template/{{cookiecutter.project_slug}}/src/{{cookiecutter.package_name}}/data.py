"""Data for training: a character/byte-level text corpus and a synthetic addition task.

Both tasks offer the same small interface the training loop uses:
`vocab_size`, `codec`, `get_batch(split, batch_size, generator, device) -> (x, y)` and
`extra_eval(model, device) -> dict` (task-specific metrics such as exact-match accuracy).
Targets equal to -1 are ignored by the loss (used to train only on answer tokens).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import DataConfig
from .errors import UserError


class DataError(UserError):
    """The configured data cannot be read."""


# ----------------------------------------------------------------------------- codecs


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


# ----------------------------------------------------------------------------- text corpus


def read_text(path: str | Path, extensions: list[str] | tuple[str, ...] = (".md", ".txt")) -> str:
    """Read one text file, or every matching file under a folder (sorted, so runs repeat)."""
    p = Path(path)
    if p.is_file():
        files = [p]
    elif p.is_dir():
        exts = {e.lower() for e in extensions}
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in exts)
    else:
        raise DataError(
            f"data path {str(p)!r} not found (relative paths start at the current directory: "
            "run from the project root or pass --set data.path=FILE_OR_FOLDER)"
        )
    text = "\n\n".join(f.read_text(encoding="utf-8", errors="replace") for f in files)
    if not text.strip():
        raise DataError(f"no text found in {str(p)!r} (looked for {', '.join(extensions)})")
    return text


def load_datasets_text(data_files: str | list[str]) -> str:
    """The Hugging Face `datasets` path: `load_dataset("text", data_files=...)`.

    Works with local files (offline) and, where the network allows, hub datasets. `datasets`
    is an optional extra (`pip install datasets`), imported only here.
    """
    try:
        from datasets import load_dataset
    except ImportError:
        raise DataError(
            "data.kind=datasets needs the optional 'datasets' package: pip install datasets"
        ) from None
    ds = load_dataset("text", data_files=data_files, split="train")
    return "\n".join(ds["text"])


class TextTask:
    """Next-token prediction on a corpus, stored as one compact tensor of token ids.

    The tokens live in a uint8/int16/int32 tensor (whichever fits the vocabulary) and a batch is
    gathered from random offsets, so memory is ~1-4 bytes per character and nothing is copied
    per epoch. For corpora larger than RAM the same sampler works over a numpy.memmap.
    """

    def __init__(self, text: str, block_size: int, val_fraction: float, level: str = "char"):
        import torch

        self.codec = Codec.from_text(text, level)
        self.block_size = block_size
        ids = self.codec.encode(text)
        dtype = torch.uint8 if self.vocab_size <= 256 else torch.int32
        data = torch.tensor(ids, dtype=dtype)
        n_val = max(int(len(data) * val_fraction), block_size + 2)
        if len(data) - n_val < block_size + 2:
            raise DataError(
                f"corpus too small: {len(data)} tokens for block_size {block_size}; "
                "add text or lower model.block_size"
            )
        self.splits = {"train": data[:-n_val], "val": data[-n_val:]}
        self._offsets = torch.arange(block_size + 1)

    @property
    def vocab_size(self) -> int:
        return self.codec.vocab_size

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

    def extra_eval(self, model: Any, device: str) -> dict[str, float]:
        return {}


# ----------------------------------------------------------------------------- addition task


class AdditionTask:
    """Synthetic task: 'ab+cd=' -> the sum, zero-padded ('07+35=042'). Loss on answer only.

    Pairs are split into train and held-out sets, so `eval/accuracy` (exact match with greedy
    decoding) measures generalisation, not memorisation.
    """

    VOCAB = "0123456789+="

    def __init__(self, digits: int = 2, val_fraction: float = 0.1, seed: int = 0):
        import torch

        self.codec = Codec(self.VOCAB)
        self.digits = digits
        n = 10**digits
        pairs = [(a, b) for a in range(n) for b in range(n)]
        random.Random(seed).shuffle(pairs)  # fixed split, independent of the training seed
        n_val = max(1, int(len(pairs) * val_fraction))
        self.prompt_len = 2 * digits + 2  # 'ab+cd='
        self.answer_len = digits + 1
        self.splits = {
            "val": torch.tensor([self._encode(a, b) for a, b in pairs[:n_val]]),
            "train": torch.tensor([self._encode(a, b) for a, b in pairs[n_val:]]),
        }
        self.block_size = self.prompt_len + self.answer_len - 1

    def _encode(self, a: int, b: int) -> list[int]:
        d = self.digits
        return self.codec.encode(f"{a:0{d}d}+{b:0{d}d}={a + b:0{d + 1}d}")

    @property
    def vocab_size(self) -> int:
        return self.codec.vocab_size

    def get_batch(self, split: str, batch_size: int, generator: Any, device: str) -> tuple:
        import torch

        data = self.splits[split]
        seq = data[torch.randint(len(data), (batch_size,), generator=generator)]
        x, y = seq[:, :-1], seq[:, 1:].clone()
        y[:, : self.prompt_len - 1] = -1  # no loss on the question, only on the answer digits
        return x.to(device), y.to(device)

    def extra_eval(self, model: Any, device: str, limit: int | None = None) -> dict[str, float]:
        """Exact-match accuracy on held-out problems with greedy decoding."""
        import torch

        seq = self.splits["val"][:limit].to(device)
        prompts, answers = seq[:, : self.prompt_len], seq[:, self.prompt_len :]
        out = model.generate(prompts, self.answer_len, temperature=0)
        correct = (out[:, self.prompt_len :] == answers).all(dim=1).float().mean()
        return {"accuracy": float(torch.as_tensor(correct))}


def build_task(cfg: DataConfig, block_size: int) -> TextTask | AdditionTask:
    """Create the task described by the data config."""
    if cfg.kind == "addition":
        task = AdditionTask(cfg.digits, cfg.val_fraction)
        if task.block_size > block_size:
            raise DataError(f"addition needs model.block_size >= {task.block_size}")
        return task
    if cfg.kind == "datasets":
        text = load_datasets_text(cfg.path)
    else:
        text = read_text(cfg.path, cfg.extensions)
    return TextTask(text, block_size, cfg.val_fraction, cfg.tokenizer)
