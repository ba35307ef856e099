"""Render time of every variant with both engines: `uv run python benchmarks/render.py`.

Prints one row per variant (median of --repeat renders, in seconds) against the < 2 s target for
`copier copy`. The template is snapshotted into a temporary git repository first, as the tests do.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from cookiecutter.main import cookiecutter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import render_copier, snapshot_template
from tests.variants import VARIANTS, variant_id

TARGET_S = 2.0


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        template = snapshot_template(tmp / "template")
        width = max(len(variant_id(answers)) for answers in VARIANTS)
        print(f"{'variant':<{width}} {'copier s':>9} {'cookiecutter s':>15}")
        worst = 0.0
        for answers in VARIANTS:
            key = variant_id(answers)
            copier_times, cookie_times = [], []
            for i in range(args.repeat):
                render = partial(render_copier, template, tmp / f"c-{key}-{i}", answers)
                copier_times.append(timed(render))
                bake = partial(
                    cookiecutter,
                    str(template / "template"),
                    no_input=True,
                    extra_context=answers,
                    output_dir=str(tmp / f"k-{key}-{i}"),
                )
                cookie_times.append(timed(bake))
            c, k = statistics.median(copier_times), statistics.median(cookie_times)
            worst = max(worst, c)
            print(f"{key:<{width}} {c:>9.2f} {k:>15.2f}")
        verdict = "meets" if worst < TARGET_S else "MISSES"
        print(f"slowest copier render: {worst:.2f} s ({verdict} the < {TARGET_S:.0f} s target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
