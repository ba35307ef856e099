"""Command-line interface: `python -m <package> COMMAND`.

Each command is a small handler function registered in `build_parser()`; handlers import
torch and friends lazily so `--help` stays instant. A component with commands of its own adds
them with an `add_..._parser(subparsers)` function called from `build_parser()`.
A `UserError` (bad config, missing file...) becomes a one-line message and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from . import __version__
{%- if cookiecutter.with_demo %}
from .demo import add_demo_parser
{%- endif %}
from .errors import UserError
{%- if cookiecutter.with_rag %}
from .rag.cli import add_rag_parser
{%- endif %}


def cmd_doctor(args: argparse.Namespace) -> int:
    from .device import doctor_info, format_doctor

    info = doctor_info()
    print(json.dumps(info, indent=2) if args.json else format_doctor(info))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import logging

    from .config import apply_overrides, load_config
    from .train import run

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if args.resume is not None:
        if args.config is not None:
            raise UserError("use either --config or --resume (a run keeps its own config.yaml)")
        config = load_config(Path(args.resume) / "config.yaml", args.set)
        runs_dir = Path(args.resume).parent
    else:
        config = load_config(args.config, [])
        if args.config is not None and not config.name:
            config.name = f"{Path(args.config).stem}-{datetime.now():%Y%m%d-%H%M%S}"
        apply_overrides(config, args.set)
        runs_dir = Path(args.runs_dir)
    run_dir = run(config, runs_dir, resume=args.resume)
    print(run_dir)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    print(write_report(Path(args.run_dir)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        # `python -m pkg` would otherwise show up as "__main__.py" in usage lines.
        prog=f"python -m {__package__}" if sys.argv[0].endswith("__main__.py") else None,
        description="Train, inspect and report on small models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("doctor", help="report Python, torch, device and precision")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("train", help="train a model; writes a run folder")
    p.add_argument("--config", type=Path, help="YAML config (e.g. configs/tiny.yaml)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.max_steps=100 (repeatable)",
    )
    p.add_argument(
        "--runs-dir", default="runs", help="parent folder of run folders (default: runs)"
    )
    p.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="continue a run from its checkpoint"
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("report", help="rebuild report.md and the loss plot of a run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(func=cmd_report)
{%- if cookiecutter.with_rag %}

    add_rag_parser(sub)
{%- endif %}
{%- if cookiecutter.with_demo %}

    add_demo_parser(sub)
{%- endif %}
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
