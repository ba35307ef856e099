"""The addition task: 'ab+cd=' -> the sum, zero-padded ('07+35=042'). Loss on the answer only.

Pairs are split into train and held-out sets once (a fixed seed, independent of the training
seed), so `eval/accuracy` (exact match with greedy decoding) measures generalisation, not
memorisation.
"""

from __future__ import annotations

import random
from typing import Any

from ..config import Config
from .text import Codec, DataError, GPTTask


class AdditionTask(GPTTask):
    name = "addition"
    VOCAB = "0123456789+="

    def __init__(self, cfg: Config, state: dict[str, Any] | None = None):
        import torch

        super().__init__(cfg, state)
        self.codec = Codec(self.VOCAB)
        self.digits = d = cfg.data.digits
        n = 10**d
        pairs = [(a, b) for a in range(n) for b in range(n)]
        random.Random(0).shuffle(pairs)
        n_val = max(1, int(len(pairs) * cfg.data.val_fraction))
        self.prompt_len = 2 * d + 2  # 'ab+cd='
        self.answer_len = d + 1
        self.splits = {
            "val": torch.tensor([self._encode(a, b) for a, b in pairs[:n_val]]),
            "train": torch.tensor([self._encode(a, b) for a, b in pairs[n_val:]]),
        }
        needed = self.prompt_len + self.answer_len - 1
        if needed > cfg.model.block_size:
            raise DataError(f"addition needs model.block_size >= {needed}")

    def _encode(self, a: int, b: int) -> list[int]:
        d = self.digits
        return self.codec.encode(f"{a:0{d}d}+{b:0{d}d}={a + b:0{d + 1}d}")

    def fingerprint(self) -> str:
        return f"addition-{self.digits}-{self.cfg.data.val_fraction}"

    def get_batch(self, split: str, batch_size: int, generator: Any, device: str) -> tuple:
        import torch

        data = self.splits[split]
        seq = data[torch.randint(len(data), (batch_size,), generator=generator)]
        x, y = seq[:, :-1], seq[:, 1:].clone()
        y[:, : self.prompt_len - 1] = -1  # no loss on the question, only on the answer digits
        return x.to(device), y.to(device)

    def predict(self, model: Any, device: str, limit: int | None = None) -> tuple:
        """(prompts, predicted answers, true answers) for held-out problems, greedy decoding."""
        seq = self.splits["val"][:limit].to(device)
        prompts, answers = seq[:, : self.prompt_len], seq[:, self.prompt_len :]
        out = model.generate(prompts, self.answer_len, temperature=0)
        return prompts, out[:, self.prompt_len :], answers

    def eval_metrics(self, model: Any, device: str, limit: int | None = None) -> dict[str, float]:
        """Exact-match accuracy on held-out problems."""
        _, predicted, answers = self.predict(model, device, limit)
        return {"accuracy": float((predicted == answers).all(dim=1).float().mean())}

    def report(self, model: Any, device: str) -> dict[str, Any]:
        """A few held-out problems with the model's answers, wrong ones first."""
        model.eval()
        prompts, predicted, answers = self.predict(model, device, limit=200)
        model.train()
        rows = []
        for p, y, t in zip(prompts.tolist(), predicted.tolist(), answers.tolist(), strict=True):
            rows.append(
                {
                    "input": self.codec.decode(p),
                    "target": self.codec.decode(t),
                    "output": self.codec.decode(y),
                }
            )
        rows.sort(key=lambda r: r["output"] == r["target"])
        return {"examples": rows[:8]}
