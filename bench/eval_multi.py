"""Two or three identities in one panel: own similarity and leak, plain vs regional vs face pass.

``python -m bench.eval_identity --multi`` runs this. For every group of 2 and of 3 identities
(consecutive windows over the identity list) and every multi-person prompt, the same panel (same
seed) is drawn four ways:

* ``plain`` — all signal words in one prompt, no regions, no face pass (the seed's behaviour);
* ``regional-shared`` — the earlier regional attention: one shared prompt, each character's
  signal words masked outside its place (``generation.character_prompts: false``), no face pass;
* ``regional`` — per-character prompts composited in cross-attention (:mod:`pipelines.regional`,
  :mod:`pipelines.character_prompts`), no face pass;
* ``regional+face`` — per-character prompts, then the identity face pass (:mod:`pipelines.face_pass`).

Every face found is matched to the cast (Hungarian assignment on face similarity,
:func:`faces.similarity.assign_faces`) and reports ``own`` — the cosine similarity to
its matched identity's reference — and ``leak`` — the largest similarity to another cast member
(blending shows as a high leak and a small ``own - leak`` margin). Rows: one per (cast size,
variant), means over faces, plus the share of cast members whose face was found.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

MULTI_PROMPTS: dict[int, tuple[str, ...]] = {
    2: ("{0} and {1} sit at a cafe table, medium shot",
        "{0} shakes hands with {1} in a park, wide shot",
        "{0} and {1} look at a map on a mountain trail"),
    3: ("{0}, {1} and {2} stand together on a city street, wide shot",
        "{0}, {1} and {2} sit around a dinner table",
        "{0}, {1} and {2} pose for a group photo at a beach"),
}
VARIANTS: dict[str, dict[str, bool]] = {
    "plain": {"regional": False, "face_pass": False},
    "regional-shared": {"regional": True, "face_pass": False, "character_prompts": False},
    "regional": {"regional": True, "face_pass": False},
    "regional+face": {"regional": True, "face_pass": True},
}


@dataclass(frozen=True)
class FaceRecord:
    """One cast member in one drawn panel: ``own`` / ``leak`` None when its face was not found."""

    cast_size: int
    variant: str
    prompt: str
    name: str
    own: float | None
    leak: float | None


def score_cast(similarity: Any, image: Any, references: np.ndarray) -> list[tuple[float | None, float | None]]:
    """(own, leak) per cast member: Hungarian-matched face's similarity to its own reference and
    the largest similarity of that face to another cast member's reference."""
    from faces.similarity import assign_faces, cosine_matrix

    _, embeddings = similarity.embed_faces(image)
    matrix = cosine_matrix(references, embeddings)  # (cast, faces)
    out: list[tuple[float | None, float | None]] = []
    for i, j in enumerate(assign_faces(matrix)):
        if j is None:
            out.append((None, None))
            continue
        others = [float(matrix[m, j]) for m in range(len(references)) if m != i]
        out.append((float(matrix[i, j]), max(others) if others else None))
    return out


def evaluate_multi(generator: Any, similarity: Any, identities: Sequence[Any], references: np.ndarray,
                   *, seed: int, steps: int | None, prompts_per_size: int | None = None,
                   sizes: Sequence[int] = (2, 3), save_dir: Path | None = None,
                   log: Callable[[str], None] = lambda line: None,
                   shared_generator: Any = None) -> list[FaceRecord]:
    """Draw every (group, prompt, variant) panel and score each cast member's face.

    Args:
        generator: draws every variant but ``regional-shared`` (its preset's
            ``generation.character_prompts`` should be on).
        identities: ``IdentityLike`` objects (name, clip_l, clip_g); ``references`` their
            reference embeddings (len(identities), D), same order.
        seed: panel ``k`` of a group uses ``seed + k`` in every variant (same noise).
        shared_generator: a generator on the same components with ``character_prompts`` off
            for the ``regional-shared`` variant (None: that variant is skipped).
    """
    from pipelines.face_pass import IdentityMatcher
    from pipelines.generation import ComicRequest, PanelSpec

    records: list[FaceRecord] = []
    for size in sizes:
        if len(identities) < size:
            continue
        prompts = MULTI_PROMPTS[size][:prompts_per_size]
        for start in range(len(identities) - size + 1):
            group = list(identities[start:start + size])
            group_refs = references[start:start + size]
            names = [i.name for i in group]
            matcher = IdentityMatcher(similarity, {n: group_refs[k] for k, n in enumerate(names)})
            panels = tuple(PanelSpec(p.format(*names), tuple(names)) for p in prompts)
            for variant, switches in VARIANTS.items():
                switches = dict(switches)
                drawer = generator if switches.pop("character_prompts", True) else shared_generator
                if drawer is None:
                    continue
                request = ComicRequest(panels=panels, seed=seed, steps=steps, candidates=1, **switches)
                for result in drawer.generate(request, {i.name: i for i in group}, matcher=matcher):
                    scores = score_cast(similarity, result.image, group_refs)
                    for name, (own, leak) in zip(names, scores):
                        records.append(FaceRecord(size, variant, prompts[result.index], name, own, leak))
                    if save_dir is not None:
                        save_dir.mkdir(parents=True, exist_ok=True)
                        result.image.save(save_dir / f"multi{size}_g{start}_p{result.index}_{variant}.png")
                    log(f"{size} people | {variant:15s} | {panels[result.index].text} | " + ", ".join(
                        f"{n} {_fmt(o)}/{_fmt(l)}" for n, (o, l) in zip(names, scores)))
    return records


def summarise_multi(records: Sequence[FaceRecord]) -> list[dict[str, Any]]:
    """One row per (cast size, variant): face rate, mean own, mean and max leak, mean margin."""
    rows = []
    for size in sorted({r.cast_size for r in records}):
        for variant in VARIANTS:
            chosen = [r for r in records if r.cast_size == size and r.variant == variant]
            if not chosen:
                continue
            found = [r for r in chosen if r.own is not None]
            leaks = [r.leak for r in found if r.leak is not None]
            rows.append({
                "cast": size, "variant": variant, "faces": len(chosen),
                "face_rate": len(found) / len(chosen),
                "own": _mean([r.own for r in found]), "leak": _mean(leaks),
                "max_leak": max(leaks) if leaks else None,
                "margin": _mean([r.own - r.leak for r in found if r.own is not None and r.leak is not None]),
            })
    return rows


MULTI_COLUMNS = ("cast", "variant", "faces", "face_rate", "own", "leak", "max_leak", "margin")


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.fmean(kept) if kept else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


__all__ = ["FaceRecord", "MULTI_COLUMNS", "MULTI_PROMPTS", "VARIANTS", "evaluate_multi", "score_cast",
           "summarise_multi"]
