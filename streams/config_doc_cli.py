"""Print or check the risk engine's configuration reference (``docs/configuration.md``).

Usage::

    python -m streams.config_doc_cli > docs/configuration.md          # regenerate
    python -m streams.config_doc_cli --check docs/configuration.md    # exit 1 when the file is stale

The text comes from :func:`detectors.config_doc.render_reference` (pure); this module only does the I/O.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from detectors.config_doc import REGENERATE, render_reference

__all__ = ["check", "main"]


def check(path: Path) -> list[str]:
    """The problems of the committed reference at ``path``: missing, or different from the rendered one."""
    if not path.exists():
        return [f"{path}: missing"]
    committed, expected = path.read_text(encoding="utf-8"), render_reference()
    if committed == expected:
        return []
    pairs = zip(committed.splitlines(), expected.splitlines(), strict=False)
    line = next((i for i, (a, b) in enumerate(pairs, 1) if a != b), None)
    where = f"line {line}" if line is not None else "its end"
    return [f"{path}: differs from the engine configuration (first difference at {where})"]


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m streams.config_doc_cli", description=(__doc__ or "").split("\n", 1)[0]
    )
    parser.add_argument("--check", metavar="FILE", type=Path, help="only compare FILE; exit 1 when it is stale")
    args = parser.parse_args(argv)
    if args.check is not None:
        problems = check(args.check)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"run `{REGENERATE}` and commit it", file=sys.stderr)
            return 1
        print(f"{args.check} up to date")
        return 0
    sys.stdout.buffer.write(render_reference().encode("utf-8"))  # UTF-8 whatever the locale
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
