"""`theory` commands: one per lab (see labs/theory/). Found by the core CLI at run time."""

from __future__ import annotations

import argparse
import json

from ..labs import add_settings_arguments, load_settings


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
    return theory
