"""``python -m pipelines generate``: draw a comic from the story parser's panel list.

Writes ``panel_01.png`` ..., ``page_1.png`` ..., ``comic.pdf``, ``project.json``,
``comic.zip`` and ``comic.cbz`` (for comic readers) into ``--out`` (see :mod:`pipelines.export`). ``--project FILE`` regenerates a saved
project (project.json, its folder, or comic.zip, whose embedded identities are used unless
``--library`` is given) instead of reading ``--panels``; other options override its settings
(``--seed`` replaces the saved per-panel seeds).

Exit status: 0 done; 2 a usage problem, reported as one ``error: ...`` line on stderr (bad or
empty panels.json, unknown character or style, too many identities in a panel, unwritable
output folder, bad config, model unavailable). Progress goes to stderr, one line per panel; the
written files are listed on stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

EXIT_USAGE = 2


class UsageError(Exception):
    """A problem the user can fix; printed as one ``error:`` line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m pipelines", description="Draw identity-preserving comics.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    gen = sub.add_parser("generate", help="draw a comic from a panels.json")
    source = gen.add_mutually_exclusive_group(required=True)
    source.add_argument("--panels", type=Path, help="JSON list of {\"text\", \"characters\"}")
    source.add_argument("--project", type=Path,
                        help="regenerate a saved project (project.json, its folder or comic.zip)")
    gen.add_argument("--preset", help="config preset (tiny, sdxl); default: $COMIC_PRESET or sdxl")
    gen.add_argument("--config", type=Path, help="a preset YAML file (wins over --preset)")
    gen.add_argument("--base", help="any SDXL checkpoint: a diffusers repo id or a local single-file "
                                    ".safetensors (default: the preset's model.base, else model.pretrained)")
    gen.add_argument("--library", type=Path, help="identity library folder (default: the preset's)")
    gen.add_argument("--style", help="style name (see configs/styles.yaml); default: comic book")
    gen.add_argument("--keywords", help='comma-separated style keywords, e.g. "comic style,vivid colors"')
    gen.add_argument("--negative", help="negative prompt (default: the preset's)")
    gen.add_argument("--seed", type=int, help="base seed; panel i uses seed + i (default 0)")
    gen.add_argument("--steps", type=int, help="sampling steps (default: the preset's)")
    gen.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    gen.add_argument("--width", type=int, help="panel width in pixels")
    gen.add_argument("--height", type=int, help="panel height in pixels")
    gen.add_argument("--candidates", type=int, help="images drawn per panel")
    gen.add_argument("--title", help="comic title, shown on the first page")
    gen.add_argument("--writer", default="",
                     help="the story's writer, recorded in comic.cbz's ComicInfo.xml")
    gen.add_argument("--out", type=Path, default=Path("outputs/comic"), help="output folder")
    gen.add_argument("--no-faces", action="store_true",
                     help="skip face detection for speech bubbles (they then go top-left; the "
                          "face pass has its own switch, --no-face-pass)")
    gen.add_argument("--no-identities", action="store_true",
                     help="do not embed the cast's learned vectors in comic.zip")
    gen.add_argument("--no-regional", action="store_true",
                     help="panels with several characters: let every signal word reach the whole "
                          "picture (default: each character only in its place)")
    gen.add_argument("--no-face-pass", action="store_true",
                     help="do not redraw detected faces with their character's identity")
    gen.add_argument("--loras", type=Path, help="style LoRA folder (default: the preset's loras_dir)")
    gen.add_argument("--lora", action="append", metavar="NAME[:WEIGHT]", type=_lora_choice,
                     help="a style LoRA of the folder with its weight (default 1); repeat for "
                          "several; replaces a project's LoRAs")
    return parser


def _lora_choice(text: str):
    """``NAME[:WEIGHT]`` -> :class:`pipelines.loras.LoraChoice` (argparse type)."""
    from pipelines.loras import LoraChoice

    name, _, weight = text.rpartition(":") if ":" in text else (text, "", "1")
    try:
        return LoraChoice(name.strip(), float(weight))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not NAME or NAME:WEIGHT") from None


def _read_panels(path: Path):
    """The panels of a panels.json, read within ``configs/limits.yaml`` (size, depth, numbers)."""
    from pipelines.project import load_panels

    try:
        return load_panels(path)
    except FileNotFoundError:
        raise UsageError(f"panels file not found: {path}") from None


def _request(args: argparse.Namespace):
    """(ComicRequest, title, project or None) from the arguments."""
    from dataclasses import replace

    from pipelines.project import ComicRequest, load_project
    from pipelines.styles import load_style_book

    book = load_style_book()
    overrides = {key: value for key, value in dict(
        negative_prompt=args.negative, seed=args.seed, steps=args.steps,
        guidance_scale=args.guidance, width=args.width, height=args.height,
        candidates=args.candidates).items() if value is not None}
    if args.no_regional:
        overrides["regional"] = False
    if args.no_face_pass:
        overrides["face_pass"] = False
    if args.lora:
        overrides["loras"] = tuple(args.lora)
    if args.style is not None:
        overrides["style"] = book.style(args.style).name
    if args.keywords is not None:
        overrides["keywords"] = tuple(book.keyword_list(args.keywords))
    if args.project is not None:
        project = load_project(args.project)
        request = replace(project.request, **overrides)
        if args.seed is not None:  # a new base seed: drop the saved per-panel seeds
            request = replace(request, panels=tuple(replace(p, seed=None) for p in request.panels))
        title = project.title if args.title is None else args.title
        return request, title, project
    panels = _read_panels(args.panels)
    overrides.setdefault("style", book.default_style)
    return ComicRequest(panels=panels, **overrides), args.title or "", None


def generate(args: argparse.Namespace) -> int:
    from configs import load_config, load_limits
    from pipelines.export import ensure_writable, export_comic
    from pipelines.request_limits import check_request

    request, title, project = _request(args)
    limits = load_limits()
    if len(title) > limits.title_chars:
        raise UsageError(limits.refusal(f"--title ({len(title):,} characters)", "title_chars"))
    out = ensure_writable(args.out)
    preset = args.preset or (project.preset if project is not None and args.config is None else None)
    config = load_config(preset=preset, path=args.config).with_base(args.base)
    if args.loras is not None:
        config = config.replace(loras_dir=str(args.loras))
    check_request(request.resolved(config), limits, config.name)  # before any model loads
    from pipelines.loras import check_loras

    check_loras(request.loras, config.loras_dir)  # a LoRA this machine lacks: one line, no loading
    limit = config.generation.max_identities_per_panel
    for i, panel in enumerate(request.panels):
        if len(panel.characters) > limit:
            raise UsageError(f"panel {i + 1} has {len(panel.characters)} identities "
                             f"({', '.join(panel.characters)}); the '{config.name}' preset allows "
                             f"at most {limit} per panel")
    identities = _identities(args, config, request, project)
    if project is None:  # a saved project keeps the descriptions it was drawn with
        from dataclasses import replace

        request = replace(request, descriptions=tuple(
            (name, identity.description) for name, identity in identities.items()
            if getattr(identity, "description", "")))
    from models.loading import load_components
    from pipelines.generation import (  # torch + diffusers from here
        draw_comic,
        panel_generator,
    )

    components = load_components(config)
    generator = panel_generator(components)
    total = len(request.panels)
    started = time.perf_counter()

    def progress(results) -> None:
        from pipelines.face_pass import faces_caption

        first = results[0]
        names = f" [{', '.join(first.characters)}]" if first.characters else ""
        regional = ", regional" if first.regional else ""
        faces = faces_caption(first.faces, first.image.width)
        print(f"panel {first.index + 1}/{total}: {len(results)} candidate(s), seed {first.seed}, "
              f"{first.seconds:.2f} s{names}{regional}{'; ' + faces if faces else ''}",
              file=sys.stderr, flush=True)

    matcher = None
    if request.face_pass is not False and config.generation.face_pass and not args.no_faces:
        from pipelines.face_pass import identity_matcher

        matcher = identity_matcher(config.face, components.face_detector, identities,
                                   on_warning=lambda line: print(f"warning: {line}", file=sys.stderr))

    comic = draw_comic(generator, request, identities, title=title,
                       choices=project.choices if project is not None and args.candidates is None
                       else None,
                       face_detector=None if args.no_faces else components.face_detector,
                       on_panel=progress, matcher=matcher,
                       on_warning=lambda line: print(f"warning: {line}", file=sys.stderr))
    written = export_comic(out, comic.project, comic.panels, comic.pages,
                           candidates=comic.candidates(),
                           identities=None if args.no_identities else identities,
                           writer=" ".join(args.writer.split())[:200],
                           paper=config.generation.pdf_paper)
    print(f"drew {total} panel(s) on {len(comic.pages)} page(s) in "
          f"{time.perf_counter() - started:.1f} s -> {out}", file=sys.stderr)
    for path in [*written.panels, *written.candidates, *written.pages, written.pdf,
                 written.project, written.zip, written.cbz]:
        print(path)
    return 0


def _identities(args: argparse.Namespace, config, request, project):
    """The identity source: a project zip's embedded identities, else the library.

    Every character is looked up here, before any model is loaded.
    """
    from pipelines.project import GenerationError, UnknownCharacter, lookup_identity

    if project is not None and project.identities and args.library is None:
        source = dict(project.identities)
        where = str(args.project)
    else:
        from identities.library import IdentityLibrary

        root = args.library if args.library is not None else Path(config.library_dir)
        source = IdentityLibrary(root)
        where = str(root)
    found = {}
    for i, panel in enumerate(request.panels):
        for name in panel.characters:
            if name.lower() in found:
                continue
            try:
                found[name.lower()] = lookup_identity(source, name)
            except UnknownCharacter:
                known = sorted(source) if isinstance(source, dict) else source.names()
                hint = f"; known: {', '.join(known[:8])}{', ...' if len(known) > 8 else ''}" \
                    if known else "; the library is empty"
                raise UsageError(f"panel {i + 1}: character '{name}' is not in the identity "
                                 f"library ({where}){hint}") from None
            except GenerationError as exc:  # a damaged library entry
                raise UsageError(f"panel {i + 1}: {exc}") from None
    return {identity.name: identity for identity in found.values()}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    from configs import ConfigError

    try:
        args = build_parser().parse_args(argv)
        if args.command == "generate":
            return generate(args)
        raise UsageError(f"unknown command {args.command}")  # pragma: no cover
    except UsageError as exc:
        return _fail(str(exc))
    except (ConfigError, ValueError, OSError, RuntimeError) as exc:
        # Ours: GenerationError, StyleError, BindingError, ProjectError, LibraryError (ValueErrors),
        # ExportError (OSError), ModelUnavailable (RuntimeError). Anything else is a bug and keeps
        # its traceback.
        if type(exc).__module__.split(".")[0] not in ("configs", "pipelines", "stableidentity",
                                                   "identities", "models", "faces", "core"):
            raise
        return _fail(str(exc))


def _fail(message: str) -> int:
    from identities.names import one_line

    print(f"error: {one_line(message)}", file=sys.stderr)
    return EXIT_USAGE


__all__ = ["build_parser", "main"]
