"""Command line: ``python -m llm parse --story-file F --character "Hugh Jackman:he" [...]``.

Prints numbered panels and a line naming the parser; with ``--json`` prints exactly the list
``[{"text": ..., "characters": [...]}]`` that the panel generator reads on stdout, and
everything else on stderr. Exit status: 0 on success, 2 with a one-line message on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from llm import ParseResult, StoryError, parse_character_spec, parse_story
from identities.names import one_line

EXIT_OK = 0
EXIT_BAD_INPUT = 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors raised instead of printed usage."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m llm`` argument parser."""
    parser = _Parser(prog="python -m llm", description="Turn a story into comic panels.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("parse", help="parse a story into panels")
    p.add_argument("--story-file", required=True, help="the story as a UTF-8 text file ('-' reads stdin)")
    p.add_argument(
        "--character",
        action="append",
        default=[],
        metavar="'First Last[:pronouns]'",
        help="a character and their pronouns (he, she, they); repeat for each character",
    )
    p.add_argument("--offline", action="store_true", help="use the offline parser, never Gemini")
    p.add_argument("--json", action="store_true", help="print only the panels as JSON on stdout")
    p.add_argument("--preset", help="config preset (tiny, sdxl) for the Gemini model and timeout")
    return parser


def _read_story(path: str, stdin: TextIO) -> str:
    """The story text, at most ``story_bytes`` (``configs/limits.yaml``) read from file or stdin."""
    from configs import load_limits
    from core.safe_read import ReadRefused, read_capped

    limits = load_limits()
    cap = limits.story_bytes
    if path == "-":
        text = stdin.read(cap + 1)
        if len(text.encode("utf-8")) > cap:
            raise StoryError(limits.refusal("the story on stdin", "story_bytes"))
        return text
    try:
        return read_capped(path, cap, f"story file {path}", "story_bytes", limits).decode("utf-8")
    except ReadRefused as exc:
        raise StoryError(str(exc)) from None
    except FileNotFoundError:
        raise StoryError(f"story file not found: {path}") from None
    except UnicodeDecodeError:
        raise StoryError(f"story file is not UTF-8 text: {path}") from None
    except OSError as exc:
        raise StoryError(f"cannot read story file {path}: {exc.strerror}") from None


def _llm_config(preset: str | None) -> object | None:
    from configs import ConfigError, load_config

    try:
        return load_config(preset).llm
    except ConfigError as exc:
        raise StoryError(str(exc)) from None


def _print(result: ParseResult, as_json: bool, out: TextIO, err: TextIO) -> None:
    if as_json:
        json.dump([p.to_dict() for p in result.panels], out, ensure_ascii=False, indent=2)
        out.write("\n")
        info = err
    else:
        for i, panel in enumerate(result.panels, 1):
            who = ", ".join(panel.characters) or "no character"
            out.write(f"{i}. {panel.text}  [{who}]\n")
        info = out
    info.write(f"({result.describe()})\n")
    for warning in result.warnings:
        err.write(f"warning: {warning}\n")


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command line; returns the exit status."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        characters = [parse_character_spec(spec) for spec in args.character]
        story = _read_story(args.story_file, stdin)
        config = _llm_config(args.preset) if args.preset or not args.offline else None
        result = parse_story(story, characters, offline=args.offline, config=config)
    except (_UsageError, StoryError) as exc:
        stderr.write(f"error: {one_line(str(exc))}\n")
        return EXIT_BAD_INPUT
    _print(result, args.json, stdout, stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
