"""`theory` commands: one per lab (see labs/theory/). Found by the core CLI at run time.

Each command imports its module only when it runs, so `--help` stays fast (no torch import).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..labs import add_settings_arguments, delegate, load_settings


def cmd_regression(args: argparse.Namespace) -> int:
    from .regression import RegressionSettings, format_report, run

    settings = load_settings(RegressionSettings(), args.config, args.set)
    result = run(settings)
    print(json.dumps(result, indent=2) if args.json else format_report(result, settings))
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `theory` and its subcommands on the CLI's subparsers."""
    theory = subparsers.add_parser("theory", help="theory track: build it from scratch")
    theory.set_defaults(func=lambda args: (theory.print_help(), 2)[1])
    sub = theory.add_subparsers(dest="theory_command", metavar="COMMAND")

    p = sub.add_parser(
        "regression",
        help="lab 01: linear and logistic regression from scratch vs scikit-learn",
    )
    add_settings_arguments(p, "configs/theory/regression.yaml")
    p.set_defaults(func=cmd_regression)

    p = sub.add_parser(
        "autograd", help="lab 02: a tiny autograd engine trains an MLP, checked against torch"
    )
    add_settings_arguments(p, "configs/theory/autograd.yaml")
    p.set_defaults(func=delegate(__package__, "autograd"))

    p = sub.add_parser("layers", help="lab 03: every from-scratch layer against PyTorch")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=delegate(__package__, "compare"))

    p = sub.add_parser(
        "attention", help="lab 05: attention maps of a trained mini-GPT, as a PNG grid"
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a text or addition run folder")
    p.add_argument("--prompt", required=True, help="the text whose attention is drawn")
    p.add_argument("--out", type=Path, help="PNG to write (default RUN_DIR/attention.png)")
    p.set_defaults(func=delegate(__package__, "attention"))

    p = sub.add_parser(
        "block", help="lab 06: the from-scratch Transformer block against models/gpt.py"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=delegate(__package__, "block"))

    p = sub.add_parser("note", help="lab 08: a one-page technical note from a run's numbers")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a finished run folder")
    p.add_argument("--out", type=Path, help="file to write (default RUN_DIR/note.md)")
    p.set_defaults(func=delegate(__package__, "note"))
    return theory
