"""`applied` commands: one per lab (see labs/applied/). Found by the core CLI at run time."""

from __future__ import annotations

import argparse
import json

from ..labs import add_settings_arguments, load_settings


def cmd_classic(args: argparse.Namespace) -> int:
    from .classic import ClassicSettings, format_report, run

    settings = load_settings(ClassicSettings(), args.config, args.set)
    result = run(settings)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


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
    return applied
