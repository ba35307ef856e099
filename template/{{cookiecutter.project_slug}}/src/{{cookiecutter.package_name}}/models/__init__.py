"""Model definitions. `GPT` and `GPTConfig` are the contract the rest of the project relies on."""

from .gpt import GPT, GPTConfig

__all__ = ["GPT", "GPTConfig"]
