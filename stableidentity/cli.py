"""Command line for the identity library: ``python -m stableidentity COMMAND ...``.

Commands: ``train``, ``list``, ``delete``, ``rename``, ``export``, ``import``. The library folder
is ``--library DIR`` when given, else the preset's ``library_dir`` (relative to the current
directory). Exit status: 0 on success, 2 with one ``error: ...`` line on stderr for bad input,
130 when training is interrupted (nothing is saved then).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
PROG = "python -m stableidentity"


class CliError(ValueError):
    """Bad command-line input (one-line message)."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line ``error: ...`` message (exit 2) instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see '{self.prog} --help')\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--library", metavar="DIR",
                        help="identity library folder (default: the preset's library_dir)")
    common.add_argument("--preset", help="model preset: sdxl (default) or tiny")
    common.add_argument("--config", metavar="FILE", help="a preset YAML file (wins over --preset)")
    common.add_argument("--base", help="any SDXL checkpoint: a diffusers repo id or a local single-file "
                                       ".safetensors (default: the preset's model.base, else model.pretrained)")

    parser = _Parser(prog=PROG, description="Learn, list and manage face identities "
                                            "(StableIdentity on SDXL).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)

    train = commands.add_parser("train", parents=[common], help="learn an identity from one photo",
                                description="Learn an identity from ONE face photo and store it "
                                            "in the library. Only use photos of people who "
                                            "agreed to it.")
    train.add_argument("--image", required=True, metavar="PHOTO", help="a photo with one face")
    train.add_argument("--name", required=True, help='the full name, e.g. "Ada Lovelace"')
    train.add_argument("--pronouns", default="", help="he, she or they (optional)")
    train.add_argument("--steps", type=_positive_int, help="training steps (default: the preset's)")
    train.add_argument("--seed", type=int, help="random seed (default: the preset's)")
    train.add_argument("--overwrite", action="store_true", help="replace an identity of that name")
    train.set_defaults(handler=cmd_train)

    show = commands.add_parser("list", parents=[common], help="list the stored identities")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(handler=cmd_list)

    delete = commands.add_parser("delete", parents=[common], help="delete an identity")
    delete.add_argument("name")
    delete.set_defaults(handler=cmd_delete)

    rename = commands.add_parser("rename", parents=[common], help="rename an identity")
    rename.add_argument("old")
    rename.add_argument("new")
    rename.set_defaults(handler=cmd_rename)

    export = commands.add_parser("export", parents=[common],
                                 help="write an identity as a standalone .safetensors embedding")
    export.add_argument("name")
    export.add_argument("file")
    export.set_defaults(handler=cmd_export)

    imp = commands.add_parser("import", parents=[common],
                              help="add an SDXL embedding (.safetensors with clip_l + clip_g)")
    imp.add_argument("file")
    imp.add_argument("--name", required=True, help='the full name, e.g. "Ada Lovelace"')
    imp.add_argument("--pronouns", default="", help="he, she or they (default: from the file)")
    imp.add_argument("--face", metavar="IMAGE", help="an image to use as the thumbnail")
    imp.add_argument("--overwrite", action="store_true", help="replace an identity of that name")
    imp.set_defaults(handler=cmd_import)
    return parser


# ----------------------------------------------------------------------------- helpers

def _config(args: argparse.Namespace) -> Any:
    from configs import load_config

    return load_config(preset=args.preset, path=args.config).with_base(getattr(args, "base", None))


def _library(args: argparse.Namespace, config: Any = None) -> Any:
    """``--library`` when given, else the preset's ``library_dir``."""
    from identities.library import IdentityLibrary

    if args.library:
        return IdentityLibrary(args.library)
    return IdentityLibrary((config or _config(args)).library_dir)


def _one_line(exc: BaseException) -> str:
    from identities.names import one_line

    return one_line(str(exc)) or type(exc).__name__


def _print_problems(library: Any) -> None:
    for problem in library.problems():
        print(f"warning: skipped {problem.folder}: {problem.message}", file=sys.stderr)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def _created(value: str) -> str:
    """ISO timestamp shown as 'YYYY-MM-DD HH:MM'."""
    return value[:16].replace("T", " ")


# ----------------------------------------------------------------------------- commands

def cmd_list(args: argparse.Namespace) -> int:
    """Print the identities (table or JSON); damaged entries as warnings on stderr."""
    library = _library(args)
    identities = library.list()
    _print_problems(library)
    if args.json:
        rows = [{"name": i.name, "pronouns": i.pronouns,
                 "base_model": i.metadata.get("base_model", ""),
                 "preset": i.metadata.get("preset", ""), "steps": i.metadata.get("steps", ""),
                 "created": i.metadata.get("created", ""), "dims": list(i.dims),
                 "folder": str(i.folder), "face": str(i.face_path) if i.face_path else None}
                for i in identities]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif not identities:
        print(f"no identities in {library.root}")
    else:
        rows = [["NAME", "PRONOUNS", "BASE MODEL", "STEPS", "CREATED"]]
        rows += [[i.name, i.pronouns or "-", i.metadata.get("base_model", "-"),
                  i.metadata.get("steps", "-"), _created(i.metadata.get("created", "-"))]
                 for i in identities]
        print(_table(rows))
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete one identity."""
    library = _library(args)
    library.delete(args.name)
    print(f"deleted '{args.name.strip()}' from {library.root}")
    return EXIT_OK


def cmd_rename(args: argparse.Namespace) -> int:
    """Rename one identity."""
    identity = _library(args).rename(args.old, args.new)
    print(f"renamed '{args.old.strip()}' to '{identity.name}'")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Write one identity to a standalone .safetensors file."""
    path = _library(args).export(args.name, args.file)
    print(f"exported to {path}")
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    """Add an identity from a .safetensors embedding whose widths fit the preset's model."""
    config = _config(args)
    identity = _library(args, config).import_file(args.file, args.name, pronouns=args.pronouns,
                                                  face=args.face, overwrite=args.overwrite,
                                                  expected_dims=config.model.text_encoder_widths)
    print(f"imported '{identity.name}' into {identity.folder}")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    """Learn an identity from a photo and store it; the name and library are checked first."""
    from configs import load_limits
    from faces.photos import load_photo
    from identities.library import IdentityExists, save_trained
    from identities.names import parse_pronouns, show, validate_name

    name = validate_name(args.name)
    pronouns = parse_pronouns(args.pronouns)
    limits = load_limits()
    if args.steps is not None and args.steps > limits.train_steps:
        raise CliError(limits.refusal(f"--steps {args.steps}", "train_steps"))
    if args.seed is not None and not 0 <= args.seed <= limits.seed:
        raise CliError(limits.refusal(f"--seed {args.seed}", "seed") if args.seed > 0
                       else "--seed must not be negative")
    photo = Path(args.image)
    load_photo(photo)  # a missing, oversized or unreadable photo fails here, before any model loads
    config = _config(args)
    library = _library(args, config)
    if name in library and not args.overwrite:
        raise IdentityExists(f"an identity named {show(name)} already exists in {library.root}; "
                             "use --overwrite to replace it")

    from tqdm import tqdm

    from models.loading import load_components
    from stableidentity.trainer import train_identity

    print(f"loading the {config.name} models ...", file=sys.stderr)
    components = load_components(config)
    with tqdm(total=args.steps or config.train.steps, desc="training", unit="step",
              file=sys.stderr, dynamic_ncols=True) as bar:
        def progress(update: Any) -> None:
            bar.total = update.total
            bar.set_postfix(loss=f"{update.loss:.4f}", refresh=False)
            bar.update(update.step - bar.n)

        trained = train_identity(components, photo, steps=args.steps, progress=progress,
                                 seed=args.seed)
    for warning in trained.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    identity = save_trained(library, name, trained, pronouns=pronouns, config=config,
                            overwrite=args.overwrite, encoders=components.fingerprint.text())
    print(f"saved '{identity.name}' to {identity.folder} ({trained.steps} steps, "
          f"final loss {trained.final_loss:.4f})")
    return EXIT_OK


# ----------------------------------------------------------------------------- entry point

def _input_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input (exit 2); optional modules are skipped if absent."""
    from configs import ConfigError
    from identities.names import LibraryError

    errors: list[type[BaseException]] = [CliError, ConfigError, LibraryError]
    if "models.loading" in sys.modules:
        errors.append(sys.modules["models.loading"].ModelUnavailable)
    if "faces.photos" in sys.modules:  # FacePrepError is photos.PhotoError
        errors.append(sys.modules["faces.photos"].PhotoError)
    return tuple(errors)


def _cancelled_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [KeyboardInterrupt]
    if "stableidentity.trainer" in sys.modules:
        errors.append(sys.modules["stableidentity.trainer"].TrainingCancelled)
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, message already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except BaseException as exc:  # classified below; anything else is a bug and re-raised
        if isinstance(exc, _cancelled_errors()):
            print("error: cancelled; nothing was saved", file=sys.stderr)
            return EXIT_INTERRUPTED
        if isinstance(exc, _input_errors()):
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise


__all__ = ["CliError", "build_parser", "main"]
