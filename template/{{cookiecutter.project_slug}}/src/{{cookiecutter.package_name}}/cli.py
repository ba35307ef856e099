"""The command line: `python -m <package> COMMAND` (also installed as a console script).

Each command imports what it needs when it runs, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
{%- if cookiecutter.with_rag %}
from .rag.cli import add_rag_parser
{%- endif %}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}",
        description="The project's commands: check the machine, train, retrieve, answer, demo.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    doctor = commands.add_parser("doctor", help="report the device, precision and versions")
    doctor.add_argument("--json", action="store_true", help="print one JSON object")
    doctor.add_argument("--device", help="auto, cuda, mps or cpu (default: auto)")
    doctor.set_defaults(func=_doctor)
{%- if cookiecutter.with_rag %}
    add_rag_parser(commands)
{%- endif %}
    return parser


def _doctor(args: argparse.Namespace) -> int:
    from .device import doctor_info, format_info

    info = doctor_info(args.device)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
