"""Command-line interface: `python -m <package> COMMAND`.

The core commands (doctor, train, report, compare, config, labs) are registered
here. Optional command groups live in their own component (rag, demo) or track package
(theory, applied, systems); a rendered project holds only the ones its answers chose, so this
file looks for them at run time (`find_components`) and lets each add its own parser through an
`add_parser(subparsers)` function. The core never imports a component any other way.

Handlers import torch and friends lazily so `--help` stays instant. Every error a user can
cause is a `UserError`: `main` prints it as one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from . import __version__
from .compare_runs import add_arguments as add_compare_arguments
from .compare_runs import cmd_compare
from .errors import UserError, print_error

# Command groups in their own modules, in the order `--help` lists them: `labs` (every project
# has it), then the optional components and tracks. Each is a subpackage with a `cli.py`, or a
# module, defining `add_parser(subparsers)`.
COMPONENTS = ("labs", "rag", "demo", "theory", "applied", "systems")


def find_components(names: Sequence[str] = COMPONENTS) -> dict[str, ModuleType]:
    """{name: module with add_parser} for each optional component this project has."""
    found = {}
    for name in names:
        spec = importlib.util.find_spec(f".{name}", __package__)
        if spec is None:
            continue
        module = f".{name}.cli" if spec.submodule_search_locations else f".{name}"
        found[name] = importlib.import_module(module, __package__)
    return found


def cmd_doctor(args: argparse.Namespace) -> int:
    from .device import doctor_info, format_doctor

    info = doctor_info()
    print(json.dumps(info, indent=2) if args.json else format_doctor(info))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import logging

    from .train import run

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if args.resume is not None and args.config is not None:
        raise UserError("use either --config or --resume (a run keeps its own config.yaml)")
    run_dir = run(
        config_file=args.config,
        overrides=args.set,
        runs_dir=Path(args.runs_dir),
        resume=args.resume,
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one line, not one per process
        print(run_dir)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    print(write_report(Path(args.run_dir)))
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    from .config import describe, flatten, load_config

    cfg = load_config(args.config, args.set)
    values = flatten(cfg.to_dict())
    sections = [("training (train --config FILE)", describe(type(cfg)), values)]
    rag = find_components(("rag",))
    if rag:
        from .rag.config import RagConfig
        from .rag.config import load_config as load_rag_config

        rag_values = flatten({"rag": vars(load_rag_config(args.rag_config))})
        sections.append(("RAG (configs/rag.yaml)", describe(RagConfig, "rag"), rag_values))
    rows_out = []
    for title, rows, current in sections:
        rows_out.append(
            {
                "section": title,
                "keys": [
                    {"key": k, "type": t, "default": d, "value": current.get(k, d), "help": h}
                    for k, t, d, h in rows
                ],
            }
        )
    if args.json:
        print(json.dumps(rows_out, indent=2, default=str))
        return 0
    for section in rows_out:
        print(f"# {section['section']}")
        for row in section["keys"]:
            value = row["value"]
            shown = f"{value!r}" + (
                "" if value == row["default"] else f" (default {row['default']!r})"
            )
            print(f"{row['key']:<32} {row['type']:<10} {shown}")
            if row["help"]:
                print(f"{'':<32} {row['help']}")
        print()
    print("Environment: AI_DEVICE=cpu|cuda|cuda:N|mps forces the device when train.device is auto;")
    print("WANDB_API_KEY switches W&B to online mode; CI=1 prints plain lines instead of a bar.")
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
    add_set_argument(p)
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

    p = sub.add_parser("compare", help="compare runs: one table, one plot of their loss curves")
    add_compare_arguments(p)
    p.set_defaults(func=cmd_compare)

    config = sub.add_parser("config", help="list every config key: type, default, meaning")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="show")
    p = config_sub.add_parser("show", help="every key with its type, value and description")
    p.add_argument("--config", type=Path, help="show the values this training config gives")
    p.add_argument("--rag-config", type=Path, help="RAG config (default: configs/rag.yaml)")
    add_set_argument(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_config_show)

    for component in find_components().values():
        component.add_parser(sub)
    return parser


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.max_steps=100 (repeatable)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at exit outside this handler
        return code
    except UserError as exc:
        return print_error(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head` closed the pipe: stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 1
