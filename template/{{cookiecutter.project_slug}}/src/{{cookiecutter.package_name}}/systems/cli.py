"""`systems` commands, one per lab (see labs/systems/), and `bench`. Found by the core CLI.

Most labs follow one pattern: a settings dataclass filled from `configs/systems/<command>.yaml`
and `--set key=value`, a `run(settings)` that returns a dict of figures, and a `format_report`
that prints them (`--json` prints the dict instead). Each module is imported only when its command
runs, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import json

from ..labs import add_settings_arguments, load_settings

# command -> (module, settings class, help); each lab's config is configs/systems/<command>.yaml
MEASURE = {
    "profile": (
        "profiling",
        "ProfileSettings",
        "lab 01: profile training steps and decoding (Chrome trace + top operators)",
    ),
    "amp": ("precision", "AmpSettings", "lab 02: fp32 vs bf16 vs fp16 for training and inference"),
    "kv-cache": (
        "kv_bench",
        "KVCacheSettings",
        "lab 03: decoding with and without a KV-cache, same tokens, speed-up by model size",
    ),
    "batching": (
        "batching",
        "BatchingSettings",
        "lab 04: one by one vs static vs continuous batching on a request trace",
    ),
    "quantize": ("quantize", "QuantizeSettings", "lab 05: int8 weights for CPU inference"),
    "distill": ("distill", "DistillSettings", "lab 05: distil the mini-GPT into a smaller student"),
    "compile": ("compiling", "CompileSettings", "lab 06: torch.compile on and off"),
    "ddp": ("distributed", "DistributedSettings", "lab 08: train on 1 and 2 processes (torchrun)"),
}


def measure_handler(module_name: str, class_name: str):
    """The handler of a settings-based command: load the settings, run, print."""

    def handler(args: argparse.Namespace) -> int:
        module = importlib.import_module(f".{module_name}", __package__)
        settings = load_settings(getattr(module, class_name)(), args.config, args.set)
        result = module.run(settings)
        print(json.dumps(result, indent=2) if args.json else module.format_report(result))
        return 0

    return handler


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import cmd_serve

    return cmd_serve(args)


def cmd_loadtest(args: argparse.Namespace) -> int:
    from .loadtest import cmd_loadtest

    return cmd_loadtest(args)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `systems` with its subcommands, and `bench`, on the CLI's subparsers."""
    from .loadtest import add_loadtest_arguments  # light: fastapi and httpx load when run
    from .serve import add_serve_arguments

    systems = subparsers.add_parser("systems", help="systems track: measure, then speed up")
    systems.set_defaults(func=lambda args: (systems.print_help(), 2)[1])
    sub = systems.add_subparsers(dest="systems_command", metavar="COMMAND")
    for command, (module_name, class_name, text) in MEASURE.items():
        p = sub.add_parser(command, help=text)
        add_settings_arguments(p, f"configs/systems/{command}.yaml")
        p.set_defaults(func=measure_handler(module_name, class_name))

    p = sub.add_parser("serve", help="lab 07: serve the trained mini-GPT (OpenAI-compatible API)")
    add_serve_arguments(p)
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("loadtest", help="lab 07: load-test any OpenAI-compatible server")
    add_loadtest_arguments(p)
    p.set_defaults(func=cmd_loadtest)

    bench = subparsers.add_parser(
        "bench", help="systems track: every technique against its baseline, one JSON object"
    )
    add_settings_arguments(bench, "configs/systems/bench.yaml")
    bench.add_argument(
        "--report", action="store_true", help="also write report.md (and plots) into `out`"
    )
    bench.set_defaults(func=cmd_bench)
    return systems


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import BenchSettings, format_report, run, write_report

    settings = load_settings(BenchSettings(), args.config, args.set)
    result = run(settings)
    if args.report:
        result["report"] = str(write_report(result, settings.out))
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0
