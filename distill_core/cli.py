"""The command line: the same core functions the app's pages call.

Errors a user can cause end in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

#: Exit code for a user-caused error (bad file, missing column, unknown label...).
USAGE_ERROR = 2


class UserError(Exception):
    """A problem the user can fix; its message is printed as the one line of output."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m distill_core",
        description=(
            "Distill: have an LLM label texts with a codebook, validate the labels against human "
            "codes and distil them into a small classifier."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ingest = sub.add_parser(
        "ingest",
        help="validate a corpus file and print a summary",
        description="Validate a corpus file (CSV, TSV, Excel, Parquet, JSON Lines, Stata) and "
        "print a summary: rows, empty texts, duplicates, encoding.",
    )
    ingest.add_argument("file", help="the corpus file")
    ingest.add_argument("--text-column", required=True, help="column holding the texts")
    ingest.add_argument("--id-column", help="column holding unique ids (generated when absent)")
    ingest.add_argument("--json", action="store_true", help="print the summary as JSON")
    ingest.set_defaults(run=cmd_ingest)
    return parser


def cmd_ingest(args: argparse.Namespace) -> int:
    from distill_core.corpus import prepare_corpus, read_path

    table = read_path(args.file)
    prepared = prepare_corpus(table, args.text_column, args.id_column)
    report = prepared.report
    if args.json:
        print(json.dumps({"file": table.filename, "format": table.file_format, **report.to_dict()}))
    else:
        print(f"{table.filename} ({table.file_format})")
        for line in report.summary_lines():
            print(f"  {line}")
    for warning in table.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is meant for the user."""
    from distill_core.codebook import CodebookError
    from distill_core.corpus import CorpusError

    return (
        UserError,
        CorpusError,
        CodebookError,
        FileNotFoundError,
        IsADirectoryError,
        PermissionError,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except _user_errors() as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError | IsADirectoryError | PermissionError) and exc.filename:
        reason = {
            FileNotFoundError: "does not exist",
            IsADirectoryError: "is a folder, not a file",
            PermissionError: "cannot be read (permission denied)",
        }[type(exc)]
        return f"The file {exc.filename} {reason}."
    return " ".join(str(exc).split())
