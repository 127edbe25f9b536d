"""Identity fidelity benchmark: identities x prompts -> face similarity, face rate, CLIP score.

For every identity of the library (or those named with ``--identities``) and every prompt of
``bench/prompts_eval.txt`` (``{}`` = the identity's full name), draws the panel(s) with
:mod:`pipelines.generation` and reports, per identity and overall:

* ``face_sim`` — mean cosine similarity between the panel's matched face and the identity's
  reference crop (``face.png``), over candidates where a face was found (the recogniser is
  ``config.face.recognizer`` or ``--recognizer``; scales differ, see docs/FIDELITY.md);
* ``face_rate`` — share of candidates where a face was found for the identity;
* ``clip_t`` — mean CLIP text-image cosine between the image and the prompt with ``{}`` replaced
  by "a person", when CLIP weights are in the Hugging Face cache (else skipped, with a note);
* with ``--candidates N > 1``: ``best_face_sim`` / ``best_face_rate`` of the best-of-N pick.

Usage (repository root)::

    python -m bench.eval_identity --preset tiny --limit 2            # seconds, on CPU; draws noise
    python -m bench.eval_identity --preset sdxl --library embeddings --json out/eval.json
    python -m bench.eval_identity --preset sdxl --library embeddings --multi   # 2 and 3 people

``--multi`` draws panels with 2 and 3 identities plain, with the earlier shared-prompt regional
attention, with per-character prompts, and with per-character prompts + the face pass, and
reports per face its similarity to its own identity and the largest similarity to another cast
member (the leak); see :mod:`bench.eval_multi`.

With the tiny preset and an empty library, a seeded random demo identity (reference photo: the
astronaut in scikit-image) is used, so the harness always runs end to end; tiny draws noise, so
expect ``face_rate`` 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

if __package__ in (None, ""):  # ``python bench/eval_identity.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from PIL import Image

from bench.common import Results, format_table, machine_info, write_json
from configs import AppConfig, ConfigError, load_config

DEFAULT_PROMPTS = Path(__file__).with_name("prompts_eval.txt")
DEFAULT_CLIP = "openai/clip-vit-large-patch14"
CLIP_SUBJECT = "a person"
PLACEHOLDER = "{}"
DEMO_NAME = "Eileen Collins"
DEMO_NAMES = (DEMO_NAME, "Sally Ride", "Yuri Gagarin")


class EvalError(RuntimeError):
    """The evaluation cannot start (one-line message; exit status 2)."""


# ----------------------------------------------------------------------------- inputs

def read_prompts(path: str | Path) -> list[str]:
    """Prompt templates, one per line; blank lines and ``#`` comments skipped.

    Raises:
        EvalError: unreadable file, no prompts, or a prompt without ``{}``.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalError(f"cannot read prompts file {path}: {exc.strerror or exc}") from None
    prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    for number, prompt in enumerate(prompts, 1):
        if prompt.count(PLACEHOLDER) != 1:
            raise EvalError(f"{path}: prompt {number} must contain '{{}}' exactly once: {prompt!r}")
    if not prompts:
        raise EvalError(f"{path}: no prompts")
    return prompts


def fill(prompt: str, subject: str) -> str:
    """``"a photo of {} smiling"`` -> ``"a photo of Ada Lovelace smiling"``."""
    return prompt.replace(PLACEHOLDER, subject)


@dataclass(frozen=True)
class EvalIdentity:
    """One identity to evaluate (satisfies ``pipelines.binding.IdentityLike``).

    Attributes:
        name: full name.
        clip_l, clip_g: (2, d1), (2, d2) learned vectors.
        face: the reference image (the library's aligned ``face.png``), or None.
        face_aligned: whether ``face`` is an FFHQ-aligned crop.
        source: "library" or "demo".
    """

    name: str
    clip_l: torch.Tensor = field(repr=False)
    clip_g: torch.Tensor = field(repr=False)
    face: Image.Image | None = field(default=None, repr=False)
    face_aligned: bool = True
    source: str = "library"


def library_identities(folder: str | Path, names: Sequence[str] | None) -> list[EvalIdentity]:
    """Identities of the library at ``folder`` (all, or ``names`` in that order)."""
    from identities.library import IdentityLibrary
    from identities.names import LibraryError

    library = IdentityLibrary(folder)
    try:
        chosen = [library.get(n) for n in names] if names else library.list()
    except (LibraryError, ValueError) as exc:
        raise EvalError(str(exc)) from None
    out = []
    for identity in chosen:
        face = Image.open(identity.face_path).convert("RGB") if identity.face_path else None
        out.append(EvalIdentity(identity.name, identity.clip_l, identity.clip_g, face))
    return out


def demo_identity(text_encoder_dims: tuple[int, int], seed: int = 0) -> EvalIdentity:
    """A seeded random identity for smoke runs; reference photo: scikit-image's astronaut."""
    generator = torch.Generator().manual_seed(seed)
    clip_l = 0.02 * torch.randn(2, text_encoder_dims[0], generator=generator)
    clip_g = 0.02 * torch.randn(2, text_encoder_dims[1], generator=generator)
    try:
        from skimage import data

        face: Image.Image | None = Image.fromarray(data.astronaut())
    except ImportError:  # scikit-image is a dev dependency
        face = None
    return EvalIdentity(DEMO_NAME, clip_l, clip_g, face, face_aligned=False, source="demo")


# ----------------------------------------------------------------------------- CLIP score

class ClipScorer:
    """CLIP text-image cosine similarity with a transformers ``CLIPModel``."""

    def __init__(self, model: Any, processor: Any, device: torch.device, name: str) -> None:
        self.model, self.processor, self.device, self.name = model, processor, device, name

    @classmethod
    def load(cls, repo: str, device: torch.device) -> "ClipScorer":
        """From a local folder or the Hugging Face cache only (never downloads).

        Raises:
            EvalError: not available locally.
        """
        from transformers import CLIPModel, CLIPProcessor

        folder = Path(repo)
        if not folder.is_dir():
            from huggingface_hub import snapshot_download

            try:
                folder = Path(snapshot_download(repo, local_files_only=True))
            except Exception:  # noqa: BLE001 - any miss means "not cached"
                raise EvalError(f"CLIP weights '{repo}' are not in the Hugging Face cache") from None
        try:
            model = CLIPModel.from_pretrained(folder, local_files_only=True).to(device).eval()
            processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise EvalError(f"cannot load CLIP from {folder}: {str(exc).splitlines()[0]}") from None
        return cls(model, processor, device, repo)

    @torch.no_grad()
    def score(self, image: Image.Image, text: str) -> float:
        """Cosine in [-1, 1] between CLIP's image and text embeddings."""
        inputs = self.processor(text=[text], images=[image], return_tensors="pt", padding=True,
                                truncation=True)
        output = self.model(**{k: v.to(self.device) for k, v in inputs.items()})
        image_embeds = torch.nn.functional.normalize(output.image_embeds.float(), dim=-1)
        text_embeds = torch.nn.functional.normalize(output.text_embeds.float(), dim=-1)
        return float((image_embeds * text_embeds).sum())


# ----------------------------------------------------------------------------- evaluation

@dataclass
class CandidateRecord:
    """One drawn image of one (identity, prompt) panel."""

    candidate: int
    seed: int
    face_sim: float | None
    faces_found: int
    clip_t: float | None
    seconds: float


@dataclass
class PanelRecord:
    """All candidates of one (identity, prompt) panel, and the best-of-N pick."""

    identity: str
    prompt: str
    candidates: list[CandidateRecord]
    best: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"identity": self.identity, "prompt": self.prompt, "best": self.best,
                "candidates": [dataclasses.asdict(c) for c in self.candidates]}


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.fmean(kept) if kept else None


def summarise(records: Sequence[PanelRecord], label: str) -> dict[str, Any]:
    """One table row for ``records``: means over candidates (and over best-of-N picks)."""
    cands = [c for r in records for c in r.candidates]
    bests = [r.candidates[r.best] for r in records]
    row: dict[str, Any] = {
        "identity": label, "panels": len(records), "images": len(cands),
        "face_rate": _mean([float(c.face_sim is not None) for c in cands]),
        "face_sim": _mean([c.face_sim for c in cands]),
        "clip_t": _mean([c.clip_t for c in cands]),
        "s_per_panel": _mean([c.seconds for c in bests]),
    }
    if any(len(r.candidates) > 1 for r in records):
        row["best_face_rate"] = _mean([float(c.face_sim is not None) for c in bests])
        row["best_face_sim"] = _mean([c.face_sim for c in bests])
    return row


def evaluate(generator: Any, similarity: Any, identities: Sequence[EvalIdentity],
             prompts: Sequence[str], *, seed: int, candidates: int, steps: int | None = None,
             clip: ClipScorer | None = None, save_dir: Path | None = None,
             log: Callable[[str], None] = lambda line: None) -> tuple[list[PanelRecord], list[str]]:
    """Draw and score every (identity, prompt) panel.

    Args:
        generator: a ``pipelines.generation.PanelGenerator``.
        similarity: a ``faces.similarity.FaceSimilarity``.
        seed: base seed; prompt ``i`` uses ``seed + i`` for every identity (same noise per prompt).
    Returns:
        (panel records in identity-then-prompt order, notes).
    """
    from pipelines.generation import ComicRequest, PanelSpec
    from faces.similarity import NoFaceFound, pick_best

    notes: list[str] = []
    records: list[PanelRecord] = []
    total, done = len(identities) * len(prompts), 0
    for identity in identities:
        reference = None
        if identity.face is None:
            notes.append(f"{identity.name}: no reference face in the library; face similarity skipped")
        else:
            try:
                reference = similarity.reference(identity.face, aligned=identity.face_aligned)
            except NoFaceFound:
                notes.append(f"{identity.name}: no face found in the reference crop; face similarity skipped")
        request = ComicRequest(
            panels=tuple(PanelSpec(text=fill(p, identity.name), characters=(identity.name,))
                         for p in prompts),
            seed=seed, candidates=candidates, steps=steps)
        by_panel: dict[int, list[CandidateRecord]] = {}
        for result in generator.generate(request, {identity.name: identity}):
            score = similarity.score_panel(result.image, {identity.name: reference}) \
                if reference is not None else None
            clip_t = clip.score(result.image, fill(prompts[result.index], CLIP_SUBJECT)) if clip else None
            record = CandidateRecord(
                candidate=result.candidate, seed=result.seed,
                face_sim=score.characters[0].score if score else None,
                faces_found=score.faces_found if score else 0, clip_t=clip_t, seconds=result.seconds)
            by_panel.setdefault(result.index, []).append(record)
            if save_dir is not None:
                save_dir.mkdir(parents=True, exist_ok=True)
                slug = "-".join(identity.name.lower().split())
                result.image.save(save_dir / f"{slug}_{result.index:02d}_c{result.candidate}.png")
            if result.candidate == candidates - 1:
                done += 1
                log(f"[{done}/{total}] {identity.name} | {fill(prompts[result.index], identity.name)} | "
                    f"face {_fmt(record.face_sim)} ({record.faces_found} found) | clip {_fmt(clip_t)} | "
                    f"{result.seconds:.2f}s")
        for index in sorted(by_panel):
            cands = sorted(by_panel[index], key=lambda c: c.candidate)
            best = pick_best([_panel_score(identity.name, c) for c in cands])
            records.append(PanelRecord(identity.name, prompts[index], cands, best))
    return records, notes


def _panel_score(name: str, record: CandidateRecord) -> Any:
    from faces.similarity import CharacterScore, PanelScore

    return PanelScore([CharacterScore(name, record.face_sim)], faces_found=record.faces_found)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# ----------------------------------------------------------------------------- command line

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.eval_identity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default=None, help="tiny | sdxl (default: $COMIC_PRESET, else sdxl)")
    parser.add_argument("--config", default=None, help="a preset YAML file (wins over --preset)")
    parser.add_argument("--library", default=None, help="identity library folder (default: the preset's)")
    parser.add_argument("--identities", nargs="+", metavar="NAME", default=None,
                        help="full names to evaluate (default: every identity in the library)")
    parser.add_argument("--prompts", default=str(DEFAULT_PROMPTS), help="prompt file ({} = the name)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N prompts")
    parser.add_argument("--seed", type=int, default=0, help="base seed (prompt i: seed + i)")
    parser.add_argument("--candidates", type=int, default=1, help="images per panel (best of N)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the preset's)")
    parser.add_argument("--recognizer", choices=("dlib", "insightface"), default=None,
                        help="face recogniser (default: the preset's face.recognizer)")
    parser.add_argument("--clip-model", default=DEFAULT_CLIP,
                        help="CLIP for the text-image score (HF cache or folder); 'none' to skip")
    parser.add_argument("--save-images", default=None, metavar="DIR", help="also write every image here")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no per-panel progress lines")
    parser.add_argument("--multi", action="store_true",
                        help="2 and 3 identities per panel: own similarity and leak, plain vs "
                             "regional vs regional + face pass (--limit: prompts per cast size)")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")
    if args.candidates < 1:
        parser.error("--candidates must be >= 1")
    return args


def run(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """Load everything, evaluate, and return the results payload (see :class:`bench.common.Results`)."""
    from pipelines.generation import panel_generator
    from models.loading import ModelUnavailable, load_components
    from faces.recognizers import RecognizerUnavailable
    from faces.similarity import FaceSimilarity

    try:
        config: AppConfig = load_config(args.preset, args.config)
    except ConfigError as exc:
        raise EvalError(str(exc)) from None
    face = config.face if args.recognizer is None else dataclasses.replace(config.face, recognizer=args.recognizer)
    prompts = read_prompts(args.prompts)[:args.limit]
    library = args.library or config.library_dir
    identities = library_identities(library, args.identities)
    notes: list[str] = []
    try:
        components = load_components(config)
        similarity = FaceSimilarity.from_config(face, detector=components.face_detector)
    except (ModelUnavailable, RecognizerUnavailable) as exc:
        raise EvalError(str(exc)) from None
    if args.multi:
        return run_multi(args, config, components, similarity, identities, str(library), log)
    if not identities:
        if config.model.kind != "tiny":
            raise EvalError(f"the identity library {library} holds no identities; learn one first")
        dims = (components.text_encoder.get_input_embeddings().embedding_dim,
                components.text_encoder_2.get_input_embeddings().embedding_dim)
        identities = [demo_identity(dims, seed=config.model.seed)]
        notes.append(f"library {library} is empty: used a random demo identity '{DEMO_NAME}' "
                     "(reference: scikit-image astronaut)")
    clip = None
    if args.clip_model.lower() != "none":
        try:
            clip = ClipScorer.load(args.clip_model, components.device)
        except EvalError as exc:
            notes.append(f"CLIP score skipped: {exc} (download it once with "
                         f"`hf download {args.clip_model}`, or pass --clip-model DIR)")
    else:
        notes.append("CLIP score skipped (--clip-model none)")
    generator = panel_generator(components)
    start = time.perf_counter()
    records, eval_notes = evaluate(
        generator, similarity, identities, prompts, seed=args.seed, candidates=args.candidates,
        steps=args.steps, clip=clip, save_dir=Path(args.save_images) if args.save_images else None,
        log=log)
    notes.extend(eval_notes)
    if config.model.kind == "tiny":
        notes.append("tiny preset: random weights draw noise, so no faces are expected")
    results = Results(bench="eval_identity", machine=machine_info(components.device), settings={
        "preset": config.name, "config": config.source, "library": str(library),
        "identities": [i.name for i in identities], "prompts_file": str(args.prompts),
        "prompts": len(prompts), "seed": args.seed, "candidates": args.candidates,
        "steps": args.steps or config.generation.steps, "width": config.generation.width,
        "height": config.generation.height, "recognizer": face.recognizer,
        "clip_model": clip.name if clip else None, "wall_s": time.perf_counter() - start})
    for identity in identities:
        results.add(**summarise([r for r in records if r.identity == identity.name], identity.name))
    if len(identities) > 1:
        results.add(**summarise(records, "ALL"))
    results.notes.extend(notes)
    payload = results.as_dict()
    payload["panels"] = [r.as_dict() for r in records]
    return payload


def run_multi(args: argparse.Namespace, config: AppConfig, components: Any, similarity: Any,
              identities: list[EvalIdentity], library: str, log: Callable[[str], None]) -> dict[str, Any]:
    """``--multi``: :func:`bench.eval_multi.evaluate_multi` on the library (or, on tiny with
    fewer than three identities, seeded demo identities) -> the results payload."""
    import numpy as np

    from bench.eval_multi import evaluate_multi, summarise_multi
    from pipelines.generation import PanelGenerator, panel_generator
    from faces.similarity import NoFaceFound

    notes = []
    if len(identities) < 3 and config.model.kind == "tiny":
        dims = (components.text_encoder.get_input_embeddings().embedding_dim,
                components.text_encoder_2.get_input_embeddings().embedding_dim)
        identities = [dataclasses.replace(demo_identity(dims, seed=config.model.seed + k), name=name)
                      for k, name in enumerate(DEMO_NAMES)]
        notes.append(f"tiny preset: used {len(identities)} random demo identities (reference: the "
                     "scikit-image astronaut for all)")
    if len(identities) < 2:
        raise EvalError(f"--multi needs at least 2 identities; the library {library} holds {len(identities)}")
    references = []
    for identity in identities:
        if identity.face is None:
            raise EvalError(f"{identity.name}: no reference face in the library; --multi needs one per identity")
        try:
            references.append(similarity.reference(identity.face, aligned=identity.face_aligned))
        except NoFaceFound:
            raise EvalError(f"{identity.name}: no face found in the reference crop") from None
    start = time.perf_counter()
    generation = dataclasses.replace(config.generation, character_prompts=False)
    shared = PanelGenerator(dataclasses.replace(components, config=config.replace(generation=generation)))
    records = evaluate_multi(panel_generator(components), similarity, identities, np.stack(references),
                             seed=args.seed, steps=args.steps, prompts_per_size=args.limit,
                             save_dir=Path(args.save_images) if args.save_images else None, log=log,
                             shared_generator=shared)
    if config.model.kind == "tiny":
        notes.append("tiny preset: random weights draw noise, so no faces are expected")
    results = Results(bench="eval_identity_multi", machine=machine_info(components.device), settings={
        "preset": config.name, "config": config.source, "library": library,
        "identities": [i.name for i in identities], "seed": args.seed,
        "steps": args.steps or config.generation.steps, "width": config.generation.width,
        "height": config.generation.height, "recognizer": similarity.recognizer.name,
        "face_pass_strength": config.generation.face_pass_strength,
        "region_feather": config.generation.region_feather,
        "character_prompts": config.generation.character_prompts, "wall_s": time.perf_counter() - start})
    for row in summarise_multi(records):
        results.add(**row)
    results.notes.extend(notes)
    payload = results.as_dict()
    payload["faces"] = [dataclasses.asdict(r) for r in records]
    return payload


TABLE_COLUMNS = ("identity", "panels", "images", "face_rate", "face_sim", "best_face_rate",
                 "best_face_sim", "clip_t", "s_per_panel")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    log = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        payload = run(args, log)
    except EvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from bench.eval_multi import MULTI_COLUMNS

    wanted = MULTI_COLUMNS if args.multi else TABLE_COLUMNS
    columns = [c for c in wanted if any(c in row for row in payload["rows"])]
    print(format_table(payload["rows"], columns))
    for note in payload["notes"]:
        print(f"note: {note}")
    if args.json:
        print(f"wrote {write_json(args.json, payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
