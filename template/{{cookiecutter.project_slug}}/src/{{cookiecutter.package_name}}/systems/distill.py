"""Lab 05, part 2: distillation. Teach a small model with a large one's predictions.

A smaller model is faster (fewer layers, narrower matrices) but learns less from the same data.
Knowledge distillation (Hinton, Vinyals and Dean, 2015) trains the small *student* on more than
the next character of the text: on the whole probability distribution the trained *teacher*
gives for it. "After 'th' the teacher says e 70%, a 10%, i 8%..." carries far more information
per token than "the next one was e", so the student learns faster from the same steps.

The loss mixes two terms:
- cross-entropy with the real next tokens, as in ordinary training (weight 1 - alpha);
- the KL divergence from the teacher's distribution to the student's, both softened by a
  temperature T (softmax(logits / T): a higher T flattens them, so the small probabilities,
  which say which wrong answers are *nearly* right, count too), times T^2 so that its gradients
  keep their size whatever T is (weight alpha).

The honest comparison is the same student trained for the same steps on the same batches with
cross-entropy only: distillation is worth it if the distilled student beats that one. Both are
reported, with the teacher, their sizes, and how much faster the student runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..config import require
from ..errors import UserError
from .quantize import (
    heldout_eval,
    heldout_windows,
    shape_of,
    train_briefly,
    trained_model,
)
from .timing import best_time


@dataclass
class DistillSettings:
    checkpoint: str | None = None  # the teacher: a text run folder or .pt; empty: train one here
    data: str = "docs"  # text to train on and to measure the loss on (its last 10% is held out)
    teacher_n_layer: int = 4  # the teacher trained here (no checkpoint): tiny.yaml's shape
    teacher_n_head: int = 4  # its attention heads
    teacher_n_embd: int = 128  # its width
    teacher_steps: int = 300  # its optimizer steps
    student_n_layer: int = 2  # the student: half the teacher's layers
    student_n_head: int = 4  # its attention heads
    student_n_embd: int = 64  # and half its width
    steps: int = 300  # optimizer steps of each student (distilled, and from scratch)
    batch_size: int = 12  # sequences per training step (and per timed forward)
    seq_len: int = 64  # tokens per sequence: the students' context and the held-out windows
    lr: float = 3e-3  # AdamW peak learning rate for every model trained here
    temperature: float = 2.0  # softens both distributions in the KL term (1 = unchanged)
    alpha: float = 0.5  # weight of the KL term; 1 - alpha goes to cross-entropy with the text
    prompt_tokens: int = 16  # prompt length (held-out text) for the timed decode
    new_tokens: int = 48  # tokens decoded greedily with the KV-cache, teacher vs student
    repeats: int = 3  # timed repeats after one warm-up; the best one counts
    seed: int = 0  # weights and training batches (both students: the same init and batches)

    def check(self) -> None:
        for who in ("teacher", "student"):
            embd, head = getattr(self, f"{who}_n_embd"), getattr(self, f"{who}_n_head")
            require(
                embd % head == 0,
                f"{who}_n_embd ({embd}) must be divisible by {who}_n_head ({head})",
            )
        require(self.teacher_steps >= 1, f"teacher_steps must be >= 1, got {self.teacher_steps}")
        require(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.seq_len >= 2, f"seq_len must be >= 2, got {self.seq_len}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        require(0 <= self.alpha <= 1, f"alpha must be in [0, 1], got {self.alpha}")
        require(self.repeats >= 1, f"repeats must be >= 1, got {self.repeats}")
        require(
            self.prompt_tokens >= 1 and self.new_tokens >= 1,
            "prompt_tokens and new_tokens must be >= 1",
        )
        require(
            self.prompt_tokens + self.new_tokens <= self.seq_len,
            f"prompt_tokens + new_tokens = {self.prompt_tokens + self.new_tokens} must fit in "
            f"seq_len ({self.seq_len}), the students' context",
        )


def distillation_loss(
    student_logits: Any, teacher_logits: Any, targets: Any, temperature: float, alpha: float
) -> Any:
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy(student, targets).

    Logits are (B, T, V), targets (B, T). teacher_T = softmax(teacher_logits / T), the same for
    the student. The KL divergence is summed over the vocabulary and averaged over the tokens;
    T^2 keeps its gradients the same size whatever T is (they shrink as 1 / T^2 otherwise).
    """
    import torch.nn.functional as F

    V = student_logits.size(-1)
    student = student_logits.reshape(-1, V)
    teacher = teacher_logits.reshape(-1, V)
    ce = F.cross_entropy(student, targets.reshape(-1))
    kl = F.kl_div(  # kl_div(input, target) = KL(target || input), both as log-probabilities
        F.log_softmax(student / temperature, dim=-1),
        F.log_softmax(teacher / temperature, dim=-1),
        log_target=True,
        reduction="batchmean",  # sum over the vocabulary, mean over the tokens
    )
    return alpha * temperature**2 * kl + (1 - alpha) * ce


def divergence(student: Any, teacher: Any, x: Any, batch: int = 8) -> float:
    """Mean KL(teacher || student) per token on x (N, T), at temperature 1: how far apart the
    two models' predictions are (0 = the student predicts exactly what the teacher does)."""
    import torch
    import torch.nn.functional as F

    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            chunk = x[i : i + batch]
            s, _ = student(chunk, chunk)  # targets only ask for the logits at every position
            t, _ = teacher(chunk, chunk)
            V = s.size(-1)
            kl = F.kl_div(
                F.log_softmax(s.reshape(-1, V), dim=-1),
                F.log_softmax(t.reshape(-1, V), dim=-1),
                log_target=True,
                reduction="sum",
            )
            total += kl.item()
            count += chunk.numel()
    return total / count


def train_student(
    student: Any, teacher: Any | None, ids: Any, settings: DistillSettings
) -> tuple[float, float]:
    """Train `student` on ids, distilled from `teacher` (None: cross-entropy only).

    Returns (last training loss, seconds). The teacher only runs forward, without gradients:
    its logits are targets, it is not trained.
    """
    import torch

    def distill(model: Any, x: Any, y: Any) -> Any:
        with torch.no_grad():
            teacher_logits, _ = teacher(x, y)
        student_logits, _ = model(x, y)
        return distillation_loss(
            student_logits, teacher_logits, y, settings.temperature, settings.alpha
        )

    t0 = time.perf_counter()
    loss = train_briefly(
        student,
        ids,
        settings.steps,
        settings.batch_size,
        settings.seq_len,
        settings.lr,
        settings.seed,
        distill if teacher is not None else None,
    )
    return loss, time.perf_counter() - t0


def run(settings: DistillSettings) -> dict[str, Any]:
    """Distil a trained mini-GPT into a smaller one; compare with the same student from scratch."""
    import torch

    from ..models.gpt import GPT, GPTConfig
    from .kv_cache import generate

    started = time.perf_counter()
    teacher, text, weights = trained_model(
        settings.checkpoint,
        settings.data,
        {
            "n_layer": settings.teacher_n_layer,
            "n_head": settings.teacher_n_head,
            "n_embd": settings.teacher_n_embd,
            "block_size": settings.seq_len,
        },
        settings.teacher_steps,
        settings.batch_size,
        settings.seq_len,
        settings.lr,
        settings.seed,
    )
    if teacher.config.block_size < settings.seq_len:
        raise UserError(
            f"the teacher's context is {teacher.config.block_size} tokens: "
            f"lower seq_len ({settings.seq_len}) to at most that"
        )
    for p in teacher.parameters():
        p.requires_grad_(False)  # the teacher is only read

    def new_student() -> Any:
        torch.manual_seed(settings.seed + 1)  # both students start from the same weights
        config = GPTConfig(
            n_layer=settings.student_n_layer,
            n_head=settings.student_n_head,
            n_embd=settings.student_n_embd,
            block_size=settings.seq_len,
            vocab_size=teacher.config.vocab_size,
        )
        return GPT(config)

    distilled, scratch = new_student(), new_student()
    distilled_loss, distilled_s = train_student(distilled, teacher, text.train, settings)
    scratch_loss, scratch_s = train_student(scratch, None, text.train, settings)

    hx, hy = heldout_windows(text.val, settings.seq_len)
    models = {"teacher": teacher, "distilled": distilled, "scratch": scratch}
    heldout = {name: heldout_eval(m, hx, hy)[0] for name, m in models.items()}
    kl = {name: divergence(models[name], teacher, hx) for name in ("distilled", "scratch")}

    # Speed: a batch forward (tokens/s) and a greedy KV-cache decode, teacher vs student.
    generator = torch.Generator().manual_seed(settings.seed)
    shape = (settings.batch_size, settings.seq_len)
    x = torch.randint(teacher.config.vocab_size, shape, generator=generator)
    prompt = text.val[: settings.prompt_tokens][None]
    speed = {}
    for name in ("teacher", "distilled"):
        m = models[name]
        with torch.no_grad():
            forward_s, _ = best_time(lambda m=m: m(x, x), settings.repeats, warmup=True)
        decode_s, _ = best_time(
            lambda m=m: generate(m, prompt, settings.new_tokens, temperature=0),
            settings.repeats,
            warmup=True,
        )
        speed[name] = {"forward_tokens_per_s": x.numel() / forward_s, "decode_s": decode_s}
    teacher_speed, student_speed = speed["teacher"], speed["distilled"]
    return {
        "weights": weights,
        "data": text.source,
        "teacher": {**shape_of(teacher), "heldout_loss": heldout["teacher"], **teacher_speed},
        "student": {**shape_of(distilled), **student_speed},
        "distilled": {
            "heldout_loss": heldout["distilled"],
            "kl_to_teacher": kl["distilled"],
            "train_loss": distilled_loss,
            "train_s": distilled_s,
        },
        "scratch": {
            "heldout_loss": heldout["scratch"],
            "kl_to_teacher": kl["scratch"],
            "train_loss": scratch_loss,
            "train_s": scratch_s,
        },
        "distill_gain": heldout["scratch"] - heldout["distilled"],
        "steps": settings.steps,
        "batch": list(shape),
        "temperature": settings.temperature,
        "alpha": settings.alpha,
        "heldout_tokens": hy.numel(),
        "parameter_ratio": shape_of(teacher)["parameters"] / shape_of(distilled)["parameters"],
        "forward_speedup": student_speed["forward_tokens_per_s"]
        / teacher_speed["forward_tokens_per_s"],
        "decode_speedup": teacher_speed["decode_s"] / student_speed["decode_s"],
        "new_tokens": settings.new_tokens,
        "device": "cpu",
        "torch": torch.__version__,
        "seconds": time.perf_counter() - started,
    }


def format_report(result: dict[str, Any]) -> str:
    """Teacher, distilled student and scratch student side by side, then the speed-ups."""
    t, s = result["teacher"], result["student"]
    d, z = result["distilled"], result["scratch"]
    lines = [
        f"Distillation on {result['data']} ({result['heldout_tokens']:,} held-out tokens), "
        f"T = {result['temperature']}, alpha = {result['alpha']}",
        f"  teacher: {t['n_layer']} layers x {t['n_embd']} wide, {t['parameters'] / 1e6:.2f} M "
        f"parameters; weights: {result['weights']}",
        f"  student: {s['n_layer']} layers x {s['n_embd']} wide, {s['parameters'] / 1e6:.2f} M "
        f"parameters ({result['parameter_ratio']:.1f}x fewer), {result['steps']} steps of "
        f"{result['batch'][0]} x {result['batch'][1]} tokens each way",
        f"  {'model':<28} {'held-out loss':>13} {'KL to teacher':>14}",
        f"  {'teacher':<28} {t['heldout_loss']:>13.4f}",
        f"  {'student, distilled':<28} {d['heldout_loss']:>13.4f} {d['kl_to_teacher']:>14.4f}",
        f"  {'student, from scratch (CE)':<28} {z['heldout_loss']:>13.4f} "
        f"{z['kl_to_teacher']:>14.4f}",
        f"  distilled {'beats' if result['distill_gain'] > 0 else 'does not beat'} scratch: "
        f"{result['distill_gain']:+.4f} nats a token",
        f"Speed, student vs teacher: forward {t['forward_tokens_per_s']:,.0f} -> "
        f"{s['forward_tokens_per_s']:,.0f} tokens/s ({result['forward_speedup']:.2f}x); "
        f"KV-cache decode of {result['new_tokens']} tokens {t['decode_s']:.2f} s -> "
        f"{s['decode_s']:.2f} s ({result['decode_speedup']:.2f}x)",
        f"({result['seconds']:.0f} s in all)",
    ]
    return "\n".join(lines)
