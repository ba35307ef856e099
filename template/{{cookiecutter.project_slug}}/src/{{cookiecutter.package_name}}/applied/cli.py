"""`applied` commands: one per lab (see labs/applied/). Found by the core CLI at run time.

Each command imports its module only when it runs, so `--help` stays fast (no torch import).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli import add_set_argument
from ..labs import add_settings_arguments, delegate, load_settings

CLASSIFY_CONFIG = Path("configs/applied/classify.yaml")


def cmd_classic(args: argparse.Namespace) -> int:
    from .classic import ClassicSettings, format_report, run

    settings = load_settings(ClassicSettings(), args.config, args.set)
    result = run(settings)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def add_classify_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=CLASSIFY_CONFIG,
        help=f"a classify training config (default {CLASSIFY_CONFIG})",
    )
    add_set_argument(parser)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `applied` and its subcommands on the CLI's subparsers."""
    applied = subparsers.add_parser("applied", help="applied track: working models, measured")
    applied.set_defaults(func=lambda args: (applied.print_help(), 2)[1])
    sub = applied.add_subparsers(dest="applied_command", metavar="COMMAND")

    p = sub.add_parser(
        "classic",
        help="lab 01: classic models first, and when to switch to a bigger one",
    )
    add_settings_arguments(p, "configs/applied/classic.yaml")
    p.set_defaults(func=cmd_classic)

    p = sub.add_parser(
        "baseline", help="lab 02: TF-IDF + logistic regression on the fine-tuning split"
    )
    add_classify_config(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=delegate(__package__, "baseline"))

    p = sub.add_parser(
        "lr-find", help="lab 04: the learning-rate range test; writes the plot, suggests a rate"
    )
    add_classify_config(p)
    p.add_argument("--steps", type=int, default=100, help="steps of the range test (default 100)")
    p.add_argument("--out", type=Path, help="PNG to write (default runs/lr-find.png)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=delegate(__package__, "lr_find"))

    p = sub.add_parser(
        "export", help="lab 05: a run as a Hugging Face folder (LoRA: adapter and merged model)"
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a finished classify run")
    p.add_argument("--out", type=Path, help="folder to write (default RUN_DIR/export)")
    p.set_defaults(func=delegate(__package__, "export"))

    p = sub.add_parser("predict", help="label texts with a trained classifier")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a classify run folder")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="one or more texts to label")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=delegate(__package__, "predict"))
    return applied
