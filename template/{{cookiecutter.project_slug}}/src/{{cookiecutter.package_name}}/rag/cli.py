"""`rag index | ask | eval` subcommands, registered by the core CLI through `add_parser`.

Heavy libraries load only inside the handlers, so `python -m <package> --help` stays fast.
Handlers just raise: every RAG error is a `UserError`, which the core CLI prints as one line
with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import RagError


def project_root() -> Path:
    """The nearest folder upwards holding pyproject.toml (the project), else the current one."""
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return here


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `rag` on an argparse subparsers object. Each leaf sets `func(args) -> int`."""
    rag = subparsers.add_parser("rag", help="ask questions about your documents (RAG)")
    rag.set_defaults(func=lambda args: (rag.print_help(), 2)[1])
    sub = rag.add_subparsers(dest="rag_command", metavar="{index,ask,eval}")

    def common(p):
        p.add_argument("--index", type=Path, help="index folder (default: <project>/.rag-index)")
        p.add_argument("--config", type=Path, help="RAG config (default: configs/rag.yaml)")

    p = sub.add_parser("index", help="read documents and build the search index")
    p.add_argument("--docs", type=Path, help="documents folder (default: <project>/docs)")
    p.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    common(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("ask", help="answer a question from the indexed documents")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument(
        "--k", type=int, help="chunks to retrieve (default from config: 5; capped at all chunks)"
    )
    common(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="measure retrieval and answers on a QA file")
    p.add_argument(
        "--qa", type=Path, required=True, help="JSON lines: id, question, answer, sources"
    )
    p.add_argument("--k", type=int, default=5, help="chunks retrieved per question (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", type=Path, help="write one JSON line per question here")
    common(p)
    p.set_defaults(func=cmd_eval)
    return rag


def _settings(args):
    from .config import load_config

    root = project_root()
    config = load_config(args.config, root)
    index = args.index or root / ".rag-index"
    return root, config, index


def cmd_index(args) -> int:
    from .index import build_index

    root, config, index = _settings(args)
    docs = args.docs or root / "docs"
    report = build_index(docs, index, config, progress=sys.stderr.isatty(), force=args.force)
    # Skipped files were already reported, once each, as warnings while reading.
    for note in report.notes:
        print(note, file=sys.stderr)
    print(f"{report.summary()} -> {index}")
    return 0


def _load(args):
    from .pipeline import load_pipeline

    _, config, index = _settings(args)
    return load_pipeline(index, config)


def cmd_ask(args) -> int:
    if args.k is not None and args.k < 1:
        raise RagError(f"--k must be at least 1, got {args.k}")
    pipe = _load(args)
    answer = pipe.ask(args.question, k=args.k)
    if args.json:
        keys = ("text", "abstained", "sources", "reason")
        print(json.dumps({k: getattr(answer, k) for k in keys}, ensure_ascii=False, indent=2))
        return 0
    print(answer.text)
    if answer.sources:
        print("\nSources:")
        for s in answer.sources:
            print(f"  [{s['n']}] {s['file']} ({s['score']:.3f}): {s['snippet']}")
    return 0


def cmd_eval(args) -> int:
    from .evaluate import check_out_path, evaluate, load_qa, markdown_table, write_rows

    # Everything the user typed is checked before the model loads and the evaluation runs.
    if args.k < 1:
        raise RagError(f"--k must be at least 1, got {args.k}")
    qa = load_qa(args.qa)
    if args.out:
        check_out_path(args.out)
    pipe = _load(args)
    summary, rows = evaluate(pipe, qa, k=args.k, progress=sys.stderr.isatty())
    if args.out:
        write_rows(rows, args.out)
    print(json.dumps(summary, indent=2) if args.json else markdown_table(summary))
    return 0
