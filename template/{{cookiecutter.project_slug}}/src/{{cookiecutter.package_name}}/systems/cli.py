"""`systems` commands: one per lab (see labs/systems/). Found by the core CLI at run time."""

from __future__ import annotations

import argparse
import json

from ..labs import add_settings_arguments, load_settings


def cmd_profile(args: argparse.Namespace) -> int:
    from .profiling import ProfileSettings, format_report, run

    settings = load_settings(ProfileSettings(), args.config, args.set)
    result = run(settings)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `systems` and its subcommands on the CLI's subparsers."""
    systems = subparsers.add_parser("systems", help="systems track: measure, then speed up")
    systems.set_defaults(func=lambda args: (systems.print_help(), 2)[1])
    sub = systems.add_subparsers(dest="systems_command", metavar="COMMAND")

    p = sub.add_parser(
        "profile",
        help="lab 01: profile a few training steps of the mini-GPT (Chrome trace + top operators)",
    )
    add_settings_arguments(p, "configs/systems/profile.yaml")
    p.set_defaults(func=cmd_profile)
    return systems
