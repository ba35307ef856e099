"""What writing layers from scratch costs: ours against PyTorch's, forward + backward.

Each pair runs alternately in one process (so a busy machine slows both alike), on the shapes
the digits CNN uses (batch 64, 8x8 and 4x4 maps) and the mini-GPT's attention; the best of
several rounds is kept. The ratio is what matters: ours / PyTorch's time.

    python benchmarks/theory/bench_layers.py [--rounds 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from {{ cookiecutter.package_name }}.theory import layers
from {{ cookiecutter.package_name }}.theory.cnn import CNN, CNNConfig


def cases() -> dict[str, tuple]:
    """name -> (our function, PyTorch's, its inputs); each returns a tensor to backprop."""
    g = torch.Generator().manual_seed(0)

    def leaf(*shape):
        return torch.randn(*shape, generator=g).requires_grad_()

    x8, x4 = leaf(64, 32, 8, 8), leaf(64, 64, 4, 4)
    w, b = leaf(64, 32, 3, 3), leaf(64)
    ln_x, ln_w, ln_b = leaf(64, 64, 128), leaf(128), leaf(128)
    q, k, v = leaf(12, 4, 64, 32), leaf(12, 4, 64, 32), leaf(12, 4, 64, 32)
    logits, targets = leaf(4096, 65), torch.randint(65, (4096,), generator=g)
    return {
        "conv2d 32->64, 8x8, 3x3": (
            lambda: layers.conv2d(x8, w, b, padding=1),
            lambda: F.conv2d(x8, w, b, padding=1),
        ),
        "max_pool2d 2x2, 4x4": (lambda: layers.max_pool2d(x4, 2), lambda: F.max_pool2d(x4, 2)),
        "layer_norm 128": (
            lambda: layers.layer_norm(ln_x, 128, ln_w, ln_b),
            lambda: F.layer_norm(ln_x, (128,), ln_w, ln_b),
        ),
        "gelu": (lambda: layers.gelu(ln_x), lambda: F.gelu(ln_x)),
        "cross_entropy 4096 x 65": (
            lambda: layers.cross_entropy(logits, targets),
            lambda: F.cross_entropy(logits, targets),
        ),
        "causal attention T=64": (
            lambda: layers.scaled_dot_product_attention(q, k, v, is_causal=True),
            lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        ),
    }


def step_ms(fn, repeats: int = 10) -> float:
    """Mean milliseconds of forward + backward of fn() (sum of squares as the loss)."""
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn().square().sum().backward()
    return 1000 * (time.perf_counter() - t0) / repeats


def cnn_step_ms(rounds: int) -> float:
    """One training step of the digits CNN (batch 64), best of `rounds`."""
    torch.manual_seed(0)
    model = CNN(CNNConfig())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.rand(64, 1, 8, 8), torch.randint(10, (64,))
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(10):
            _, loss = model(x, y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        best = min(best, 100 * (time.perf_counter() - t0))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (best kept)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    rows = []
    for name, (ours, theirs) in cases().items():
        step_ms(ours, 2), step_ms(theirs, 2)  # warm-up: first calls allocate
        best_ours = best_theirs = float("inf")
        for _ in range(args.rounds):
            best_ours = min(best_ours, step_ms(ours))
            best_theirs = min(best_theirs, step_ms(theirs))
        rows.append(
            {
                "layer": name,
                "ours_ms": round(best_ours, 3),
                "torch_ms": round(best_theirs, 3),
                "ratio": round(best_ours / best_theirs, 2),
            }
        )
    result = {
        "threads": torch.get_num_threads(),
        "layers": rows,
        "cnn_train_step_ms": round(cnn_step_ms(args.rounds), 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"from-scratch layers vs PyTorch, forward + backward ({result['threads']} threads)")
    print(f"  {'layer':26} {'ours ms':>9} {'torch ms':>9} {'ratio':>7}")
    for r in rows:
        print(f"  {r['layer']:26} {r['ours_ms']:9.3f} {r['torch_ms']:9.3f} {r['ratio']:6.2f}x")
    print(f"digits CNN training step (batch 64): {result['cnn_train_step_ms']:.2f} ms")


if __name__ == "__main__":
    main()
