"""What a comic is: the request that decides its pixels, and the saved project (``project.json``).

:class:`ComicRequest` (panels + sampling settings) is what :mod:`pipelines.generation` draws;
:class:`Project` is a drawn request frozen with its provenance. This module needs no torch, so
the CLI validates a request in a fraction of a second before loading any model.

``project.json`` holds the panels (text, characters, explicit per-panel seed, chosen candidate),
the cast names (in the user's order), the characters' descriptions, the story text, style, keywords, negative prompt, steps, guidance, size, candidates, title, the
preset, model and sampler it was drawn with, and the app version. Loading it and drawing the
request again with the same preset and identities gives the same pixels.

A project zip (see :mod:`pipelines.export`) also carries the cast's learned vectors as
``identities/<slug>-<hash of the name>.safetensors`` (tensors ``clip_l`` (2, d1) and ``clip_g`` (2, d2), the SDXL
textual-inversion layout), so the comic can be regenerated without the original library.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Protocol, Sequence

from configs import Limits, load_limits
from identities.names import name_key, show
from pipelines.errors import GenerationError
from pipelines.loras import LoraChoice
from pipelines.regions import PlaceError, check_places, split_places

if TYPE_CHECKING:  # pragma: no cover - torch is imported lazily: the CLI validates without it
    import torch

    from pipelines.binding import IdentityLike

APP_VERSION = "0.1.0"
PROJECT_FORMAT = "comic-identity-project"
FORMAT_VERSION = 1
PROJECT_FILE = "project.json"
IDENTITY_DIR = "identities"


class ProjectError(ValueError):
    """A project file that cannot be read (one-line message naming the file)."""


class UnknownCharacter(GenerationError):
    """A panel names a character the identity library does not hold."""


# ----------------------------------------------------------------------------- request


@dataclass(frozen=True)
class PanelSpec:
    """One panel to draw.

    Attributes:
        text: the sentence, with characters' full names ("Ada Lovelace reads.").
        characters: the full names of the identities in the panel, in cast order (the first is
            bound to v1* v2*, the second to v3* v4*, ...).
        seed: this panel's seed; None -> ``request.seed + index``.
        places: where each character stands, in ``characters`` order (``left``, ``center``,
            ``right``, ``auto`` or a box ``x0,y0,x1,y1`` in 0-1 units; see
            :mod:`pipelines.regions`); missing entries are automatic. Canonical spelling.
        speakers: who says each quoted line of ``text``, in order (a full name, or "" when
            unknown); its speech bubble's tail points at that character (see
            :mod:`pipelines.speech`). Only lettering: the pixels of the picture do not depend on it.
    """

    text: str
    characters: tuple[str, ...] = ()
    seed: int | None = None
    places: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Any, index: int = 0, limits: Limits | None = None) -> "PanelSpec":
        """Read the story parser's ``{"text": ..., "characters": [...]}`` (``seed``, ``places``
        optional; files without places read as automatic layout).

        Raises:
            GenerationError: malformed; LimitError: text, names or seed outside ``limits``.
        """
        from pipelines.request_limits import check_panel, check_seed

        limits = limits or load_limits()
        where = f"panel {index + 1}"
        if not isinstance(data, Mapping):
            raise GenerationError(f"{where}: expected an object with 'text' and 'characters', "
                                  f"got {type(data).__name__}")
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise GenerationError(f"{where}: 'text' must be a non-empty string")
        characters = data.get("characters", [])
        if not isinstance(characters, list) or not all(isinstance(c, str) and c.strip()
                                                       for c in characters):
            raise GenerationError(f"{where}: 'characters' must be a list of names")
        if len(characters) > limits.cast:
            raise GenerationError(limits.refusal(f"{where}: {len(characters)} characters", "cast"))
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise GenerationError(f"{where}: 'seed' must be a whole number")
        if seed is not None:
            check_seed(seed, f"{where}: seed", limits)
        characters = _dedupe(characters)
        places = data.get("places", [])
        if isinstance(places, str):
            places = list(split_places(places)) if places.strip() else []
        if not isinstance(places, list):
            raise GenerationError(f"{where}: 'places' must be a list like [\"left\", \"right\"]")
        try:
            places = check_places(places, characters)
        except PlaceError as exc:
            raise GenerationError(f"{where}: {exc}") from None
        speakers = data.get("speakers", [])
        if not isinstance(speakers, list) or len(speakers) > limits.cast or not all(
                isinstance(s, str) and len(s) <= limits.name_chars for s in speakers):
            raise GenerationError(f"{where}: 'speakers' must be a list of at most {limits.cast} "
                                  "names, one per quoted line")
        speakers = tuple(" ".join(s.split()) for s in speakers)
        panel = cls(text=text.strip(), characters=characters, seed=seed, places=places,
                    speakers=speakers if any(speakers) else ())
        check_panel(panel, index + 1, limits)
        return panel

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "characters": list(self.characters)}
        if self.seed is not None:
            out["seed"] = self.seed
        if any(p != "auto" for p in self.places):
            out["places"] = list(self.places)
        if any(self.speakers):
            out["speakers"] = list(self.speakers)
        return out


def _dedupe(names: Iterable[str]) -> tuple[str, ...]:
    """Names with single spaces, each once (compared by :func:`name_key`: NFKC, casefolded)."""
    seen: set[str] = set()
    out = []
    for name in names:
        key = name_key(name)
        if key not in seen:
            seen.add(key)
            out.append(" ".join(name.split()))
    return tuple(out)


def panels_from_json(data: Any, limits: Limits | None = None) -> tuple[PanelSpec, ...]:
    """The story parser's panel list -> PanelSpecs; GenerationError if empty, malformed or over
    ``limits`` (the panel count is checked before any panel is read)."""
    from pipelines.request_limits import check_panel_count

    limits = limits or load_limits()
    if isinstance(data, Mapping) and "panels" in data:
        data = data["panels"]
    if not isinstance(data, list):
        raise GenerationError("the panel list must be a JSON list of {\"text\", \"characters\"} objects")
    if not data:
        raise GenerationError("the panel list is empty")
    check_panel_count(len(data), limits)
    return tuple(PanelSpec.from_dict(item, i, limits) for i, item in enumerate(data))


@dataclass(frozen=True)
class ComicRequest:
    """Everything that decides a comic's pixels. None fields take the preset's defaults.

    Attributes:
        panels: the panels, in story order.
        style: a style name from ``configs/styles.yaml`` ("none" leaves prompts as written).
        keywords: style keywords appended to each sentence ("sentence, kw1, kw2").
        negative_prompt: None -> ``generation.negative_prompt``; the style's negative is added.
        seed: base seed (panel i: seed + i).
        steps, guidance_scale, width, height, candidates: sampling settings (pixels for sizes).
        regional: regional attention for panels with two or more characters
            (None -> ``generation.regional_attention``).
        face_pass: redraw each detected face with its character's identity
            (None -> ``generation.face_pass``).
        descriptions: (name, description) pairs put into every panel prompt naming that
            character (see :mod:`pipelines.descriptions`); empty: none.
        loras: style LoRAs of ``loras_dir`` with their weights (:mod:`pipelines.loras`).
    """

    panels: tuple[PanelSpec, ...]
    style: str = "none"
    keywords: tuple[str, ...] = ()
    negative_prompt: str | None = None
    seed: int = 0
    steps: int | None = None
    guidance_scale: float | None = None
    width: int | None = None
    height: int | None = None
    candidates: int | None = None
    regional: bool | None = None
    face_pass: bool | None = None
    descriptions: tuple[tuple[str, str], ...] = ()
    loras: tuple[LoraChoice, ...] = ()

    @property
    def description_map(self) -> dict[str, str]:
        """name -> description (only non-empty ones)."""
        return {name: text for name, text in self.descriptions if text}

    def resolved(self, config) -> "ComicRequest":
        """A copy with every None filled from ``config.generation``."""
        gen = config.generation
        return replace(
            self, panels=tuple(self.panels),
            keywords=tuple(self.keywords), loras=tuple(self.loras),
            negative_prompt=gen.negative_prompt if self.negative_prompt is None else self.negative_prompt,
            steps=gen.steps if self.steps is None else self.steps,
            guidance_scale=gen.guidance_scale if self.guidance_scale is None else self.guidance_scale,
            width=gen.width if self.width is None else self.width,
            height=gen.height if self.height is None else self.height,
            candidates=gen.candidates if self.candidates is None else self.candidates,
            regional=gen.regional_attention if self.regional is None else bool(self.regional),
            face_pass=gen.face_pass if self.face_pass is None else bool(self.face_pass),
            descriptions=tuple((name, text) for name, text in self.descriptions if text))

    def panel_seed(self, index: int) -> int:
        """Seed of panel ``index``: its own, else ``seed + index``."""
        own = self.panels[index].seed
        return own if own is not None else self.seed + index

    def cast_names(self) -> list[str]:
        """Every character of every panel, first occurrence order, case-insensitively unique."""
        return list(_dedupe(name for panel in self.panels for name in panel.characters))


# ----------------------------------------------------------------------------- identities


class IdentitySource(Protocol):
    """Anything with ``get(name) -> Identity`` raising on unknown names (an IdentityLibrary)."""

    def get(self, name: str) -> IdentityLike: ...


def lookup_identity(source: IdentitySource | Mapping[str, IdentityLike], name: str) -> IdentityLike:
    """``name``'s identity from a library or a name -> identity mapping (case-insensitive).

    Raises:
        UnknownCharacter: the source does not hold ``name``.
        GenerationError: the library holds it but cannot read it (a damaged entry).
    """
    if isinstance(source, Mapping):
        wanted = name_key(name)
        for key, identity in source.items():
            if name_key(key) == wanted:
                return identity
        found = None
    else:
        try:
            found = source.get(name)
        except (LookupError, ValueError) as exc:  # IdentityNotFound / LibraryError: ValueErrors
            missing = isinstance(exc, LookupError) or type(exc).__name__ == "IdentityNotFound"
            raise (UnknownCharacter if missing else GenerationError)(
                f"character '{name}': {exc}") from None
    if found is None:
        raise UnknownCharacter(f"character '{name}' is not in the identity library")
    return found


@dataclass(frozen=True)
class EmbeddedIdentity:
    """An identity carried inside a project zip (satisfies ``binding.IdentityLike``).

    Attributes:
        name: full name; clip_l: float32 (2, d1); clip_g: float32 (2, d2); pronouns: as stored.
    """

    name: str
    clip_l: torch.Tensor
    clip_g: torch.Tensor
    pronouns: str = ""


@dataclass(frozen=True)
class Project:
    """A comic as drawn: the resolved request plus where and how it was drawn.

    Attributes:
        request: the resolved :class:`ComicRequest`; every panel has an explicit seed.
        title: shown on the first page.
        preset: config preset name ("sdxl", "tiny"); model: its ``model.pretrained``;
            sampler: its ``generation.sampler``.
        choices: chosen candidate per panel (0 unless scoring or the user picked another).
        app_version: the version that drew it.
        identities: name -> :class:`EmbeddedIdentity`, filled when loaded from a project zip.
        story: the story text the panels were parsed from ("" when unknown).
        cast_order: the cast as the user ordered it (empty: order of first appearance).
    """

    request: ComicRequest
    title: str = ""
    preset: str = ""
    model: str = ""
    sampler: str = ""
    choices: tuple[int, ...] = ()
    app_version: str = APP_VERSION
    identities: Mapping[str, EmbeddedIdentity] = field(default_factory=lambda: MappingProxyType({}),
                                                       compare=False)
    story: str = ""
    cast_order: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_request(cls, request: ComicRequest, config, title: str = "",
                     choices: Sequence[int] | None = None, story: str = "",
                     cast: Sequence[str] = ()) -> "Project":
        """Freeze ``request`` as drawn with ``config``: defaults filled, panel seeds explicit."""
        resolved = request.resolved(config)
        panels = tuple(replace(p, seed=resolved.panel_seed(i)) for i, p in enumerate(resolved.panels))
        resolved = replace(resolved, panels=panels)
        chosen = tuple(choices) if choices is not None else (0,) * len(panels)
        if len(chosen) != len(panels):
            raise ValueError(f"{len(chosen)} choices for {len(panels)} panels")
        return cls(request=resolved, title=title, preset=config.name, model=config.model.base_name,
                   sampler=config.generation.sampler, choices=chosen, story=story,
                   cast_order=tuple(cast))

    @property
    def cast(self) -> list[str]:
        """Every character: ``cast_order`` first, then the panels' others by first appearance."""
        order = list(self.cast_order)
        keys = {" ".join(n.split()).casefold() for n in order}
        return order + [n for n in self.request.cast_names()
                        if " ".join(n.split()).casefold() not in keys]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see the module docstring)."""
        r = self.request
        choices = self.choices or (0,) * len(r.panels)
        return {
            "format": PROJECT_FORMAT,
            "format_version": FORMAT_VERSION,
            "app_version": self.app_version,
            "title": self.title,
            "story": self.story,
            "preset": self.preset,
            "model": self.model,
            "sampler": self.sampler,
            "cast": self.cast,
            "style": r.style,
            "keywords": list(r.keywords),
            "negative_prompt": r.negative_prompt,
            "seed": r.seed,
            "steps": r.steps,
            "guidance_scale": r.guidance_scale,
            "width": r.width,
            "height": r.height,
            "candidates": r.candidates,
            "regional": r.regional,
            "face_pass": r.face_pass,
            "descriptions": r.description_map,
            "loras": [c.to_dict() for c in r.loras],
            "panels": [{**p.to_dict(), "seed": r.panel_seed(i), "candidate": choices[i]}
                       for i, p in enumerate(r.panels)],
        }

    def to_json(self) -> str:
        """The JSON text; strict (no NaN / Infinity: a request is checked finite on the way in)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = "project",
                  limits: Limits | None = None) -> "Project":
        """Read the JSON form; ProjectError naming the first bad field or the limit it breaks.

        Every limit of ``configs/limits.yaml`` is checked here (sizes against the project's own
        preset), so an opened project is never partly applied.
        """
        from pipelines.request_limits import (
            check_panel_count,
            check_request,
            check_text,
        )

        limits = limits or load_limits()
        if not isinstance(data, Mapping):
            raise ProjectError(f"{source}: expected a JSON object")
        if data.get("format") != PROJECT_FORMAT:
            value = data.get("format")
            shown = show(value) if isinstance(value, str) else \
                "missing" if value is None else type(value).__name__
            raise ProjectError(f"{source}: not a comic project (format is {shown})")
        version = data.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            shown = show(version) if isinstance(version, str) else show(repr(version))
            raise ProjectError(f"{source}: 'format_version' must be a whole number such as "
                               f"{FORMAT_VERSION}, got {shown}")
        if version > FORMAT_VERSION:
            raise ProjectError(f"{source}: project format version {version} is newer than this app "
                               f"supports ({FORMAT_VERSION})")

        def text(key: str, limit_key: str, optional: bool = True) -> str:
            value = data.get(key)
            if value is None and optional:
                return ""
            if not isinstance(value, str):
                raise ProjectError(f"{source}: '{key}' must be text")
            check_text(value, f"'{key}'", limit_key, limits)
            return value

        def get(key: str, kind: type | tuple[type, ...], optional: bool = False) -> Any:
            value = data.get(key)
            if value is None and optional:
                return None
            if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
                raise ProjectError(f"{source}: '{key}' is missing or has the wrong type")
            return value

        try:
            raw_panels = data.get("panels")
            if not isinstance(raw_panels, list) or not raw_panels:
                raise ProjectError(f"{source}: 'panels' must be a non-empty list")
            check_panel_count(len(raw_panels), limits)
            panels = tuple(PanelSpec.from_dict(p, i, limits) for i, p in enumerate(raw_panels))
            keywords = data.get("keywords", [])
            if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
                raise ProjectError(f"{source}: 'keywords' must be a list of strings")
            meta = {key: text(key, "metadata_chars") for key in
                    ("preset", "model", "sampler", "app_version")}
            request = ComicRequest(
                panels=panels, style=text("style", "metadata_chars", optional=False),
                keywords=tuple(keywords),
                negative_prompt=get("negative_prompt", str, optional=True), seed=get("seed", int),
                steps=get("steps", int), guidance_scale=get("guidance_scale", (int, float)),
                width=get("width", int), height=get("height", int),
                candidates=get("candidates", int), regional=get("regional", bool, optional=True),
                face_pass=get("face_pass", bool, optional=True), loras=_read_loras(data, source))
            check_request(request, limits, meta["preset"] or None)
            request = replace(request, guidance_scale=float(request.guidance_scale))
            choices = []
            for i, p in enumerate(raw_panels):
                choice = p.get("candidate", 0)
                if isinstance(choice, bool) or not isinstance(choice, int) or \
                        not 0 <= choice < request.candidates:
                    raise ProjectError(f"{source}: panel {i + 1}: 'candidate' must be a whole number "
                                       f"from 0 to {request.candidates - 1}")
                choices.append(choice)
            title = text("title", "title_chars")
        except GenerationError as exc:  # LimitError and malformed panels
            raise ProjectError(f"{source}: {exc}") from None
        cast = data.get("cast", [])
        if not isinstance(cast, list) or len(cast) > limits.cast or \
                not all(isinstance(n, str) and len(n) <= limits.name_chars for n in cast):
            raise ProjectError(f"{source}: 'cast' must be a list of at most {limits.cast} names")
        descriptions = _read_descriptions(data.get("descriptions", {}), source, limits)
        request = replace(request, descriptions=descriptions)
        story = data.get("story", "")
        if not isinstance(story, str) or len(story.encode("utf-8")) > limits.story_bytes:
            raise ProjectError(f"{source}: 'story' must be text of at most {limits.story_bytes} bytes")
        return cls(request=request, title=title, preset=meta["preset"], model=meta["model"],
                   sampler=meta["sampler"], choices=tuple(choices),
                   app_version=meta["app_version"], story=story, cast_order=tuple(cast))


def _read_descriptions(value: Any, source: str, limits: Limits) -> tuple[tuple[str, str], ...]:
    """A project's ``descriptions`` object ({name: text}) as request pairs; ProjectError when it
    is not one, has more than ``cast`` entries, or a name or text breaks its limit."""
    from identities.names import LibraryError, clean_description

    if value is None:
        return ()
    if not isinstance(value, Mapping) or len(value) > limits.cast:
        raise ProjectError(f"{source}: 'descriptions' must map at most {limits.cast} names to text")
    pairs = []
    for name, text in value.items():
        if not isinstance(name, str) or len(name) > limits.name_chars:
            raise ProjectError(f"{source}: 'descriptions' has a name that is not a name")
        try:
            pairs.append((name, clean_description(text)))
        except LibraryError as exc:
            raise ProjectError(f"{source}: description of {show(name)}: {exc}") from None
    return tuple(p for p in pairs if p[1])


def identity_filename(name: str) -> str:
    """The zip path of ``name``'s identity: an ASCII slug plus a hash of the name's key, so two
    names never share a file (``identities/ada_lovelace-1b2c3d4e5f60.safetensors``;
    ``identities/identity-….safetensors`` for names without Latin letters such as 李小龙)."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40].strip("_") or "identity"
    digest = hashlib.sha256(name_key(name).encode("utf-8")).hexdigest()[:12]
    return f"{IDENTITY_DIR}/{slug}-{digest}.safetensors"


def identity_bytes(identity: Any) -> bytes:
    """An identity's vectors as safetensors bytes (``clip_l``, ``clip_g``; name in metadata)."""
    import torch
    from safetensors.torch import save

    tensors = {"clip_l": identity.clip_l.detach().to("cpu", torch.float32).contiguous(),
               "clip_g": identity.clip_g.detach().to("cpu", torch.float32).contiguous()}
    return save(tensors, metadata={"name": identity.name,
                                   "pronouns": str(getattr(identity, "pronouns", "") or "")})


def _safetensors_metadata(data: bytes, source: str, limits: Limits) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors blob (8-byte little-endian header size + JSON)."""
    from core.safe_read import loads_json

    size = int.from_bytes(data[:8], "little")
    if not 0 < size <= len(data) - 8:
        raise ValueError("bad header size")
    header = loads_json(data[8:8 + size], source, limits)
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("bad metadata")
    return dict(metadata)


def identity_from_bytes(data: bytes, source: str, limits: Limits | None = None) -> EmbeddedIdentity:
    """Read :func:`identity_bytes` output back; ProjectError if it is not such a file or its name
    or pronouns are not valid (names are NFKC-normalised, see :mod:`identities.names`)."""
    from safetensors.torch import load

    from identities.names import LibraryError, parse_pronouns, validate_name

    limits = limits or load_limits()
    try:
        metadata = _safetensors_metadata(data, source, limits)
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise ProjectError(f"{source}: unreadable identity file ({type(exc).__name__})") from None
    if "clip_l" not in tensors or "clip_g" not in tensors or "name" not in metadata:
        raise ProjectError(f"{source}: identity file lacks clip_l, clip_g or its name")
    for key in ("clip_l", "clip_g"):
        tensor = tensors[key]
        if tensor.ndim != 2 or tensor.shape[0] != 2 or not tensor.is_floating_point() \
                or not bool(tensor.isfinite().all()):
            raise ProjectError(f"{source}: {key} must be two rows of finite numbers, got "
                               f"{tensor.dtype} {tuple(tensor.shape)}")
    try:
        name = validate_name(metadata["name"])
        pronouns = parse_pronouns(metadata.get("pronouns", ""))
    except LibraryError as exc:
        raise ProjectError(f"{source}: {exc}") from None
    return EmbeddedIdentity(name=name, clip_l=tensors["clip_l"], clip_g=tensors["clip_g"],
                            pronouns=pronouns)


def load_project(path: str | Path, limits: Limits | None = None) -> Project:
    """Read a project from ``project.json``, a folder holding one, or a project zip.

    From a zip, the cast's embedded identities are loaded into :attr:`Project.identities`.
    Every read is bounded by ``limits`` (``configs/limits.yaml``): the zip's entry count, the
    declared and actual unpacked size of each entry read (``project.json`` and
    ``identities/*.safetensors`` only), the JSON's size, depth and numbers, then every request
    limit. A refused project changes nothing.

    Raises:
        ProjectError: missing, unreadable, invalid or over a limit (one line naming it).
    """
    from core.safe_read import ReadRefused, loads_json

    limits = limits or load_limits()
    path = Path(path)
    shown = show(str(path), 200)[1:-1]
    if path.is_dir():
        path = path / PROJECT_FILE
    identities: dict[str, EmbeddedIdentity] = {}
    try:
        if zipfile.is_zipfile(path):
            data, found = _read_project_zip(path, shown, limits)
            for identity in found:
                identities[identity.name] = identity
        else:
            data = loads_json(_read_json_file(path, limits), shown, limits)
    except FileNotFoundError:
        raise ProjectError(f"{shown}: project file not found") from None
    except ReadRefused as exc:
        raise ProjectError(str(exc)) from None
    except (OSError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise ProjectError(f"{shown}: cannot read project ({type(exc).__name__})") from None
    project = Project.from_dict(data, shown, limits)
    return replace(project, identities=MappingProxyType(identities))


def load_panels(path: str | Path, limits: Limits | None = None) -> tuple[PanelSpec, ...]:
    """Read a story parser's ``panels.json`` within ``limits`` (size, depth, numbers, panels).

    Raises:
        FileNotFoundError: no such file (the caller words it).
        GenerationError: unreadable, invalid or over a limit (one line naming it).
    """
    from core.safe_read import ReadRefused, loads_json

    limits = limits or load_limits()
    path = Path(path)
    shown = show(str(path), 200)[1:-1]
    try:
        data = loads_json(_read_json_file(path, limits), shown, limits)
    except ReadRefused as exc:
        raise GenerationError(str(exc)) from None
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise GenerationError(f"cannot read {shown}: {exc.strerror or type(exc).__name__}") from None
    return panels_from_json(data, limits)


def _read_json_file(path: Path, limits: Limits) -> bytes:
    from core.safe_read import read_capped

    return read_capped(path, limits.json_bytes, show(path.name)[1:-1], "json_bytes", limits)


def _read_project_zip(path: Path, shown: str, limits: Limits) -> tuple[Any, list[EmbeddedIdentity]]:
    """(parsed project.json, embedded identities) of a project zip, every read capped."""
    from core.safe_read import ReadRefused, ZipBudget, loads_json, open_zip, read_member

    with open_zip(path, limits) as archive:
        infos = archive.infolist()
        by_name = {info.filename: info for info in infos}
        if PROJECT_FILE not in by_name:
            raise ProjectError(f"{shown}: the zip holds no {PROJECT_FILE}")
        budget = ZipBudget(limits.zip_read_bytes)
        data = loads_json(read_member(archive, by_name[PROJECT_FILE], limits.json_bytes, "json_bytes",
                                      budget, limits, shown),
                          f"{shown}:{PROJECT_FILE}", limits)
        members = [info for info in infos if info.filename.startswith(f"{IDENTITY_DIR}/")
                   and info.filename.endswith(".safetensors")]
        if len(members) > limits.cast:
            raise ReadRefused(limits.refusal(f"{shown}: {len(members)} identity files", "cast"))
        found = []
        for info in members:
            where = f"{shown}:{show(info.filename, 120)[1:-1]}"
            blob = read_member(archive, info, limits.identity_bytes, "identity_bytes", budget,
                               limits, shown)
            found.append(identity_from_bytes(blob, where, limits))
        keys = [name_key(identity.name) for identity in found]
        if len(set(keys)) != len(keys):
            raise ProjectError(f"{shown}: two identity files hold the same name")
    return data, found


def save_project(project: Project, path: str | Path) -> Path:
    """Write ``project.json`` to ``path`` (a file name, or a folder to write it into)."""
    path = Path(path)
    if path.is_dir():
        path = path / PROJECT_FILE
    path.write_text(project.to_json(), encoding="utf-8")
    return path


__all__ = ["APP_VERSION", "ComicRequest", "EmbeddedIdentity", "FORMAT_VERSION", "GenerationError",
           "IdentitySource", "PROJECT_FILE", "PanelSpec", "Project", "ProjectError",
           "UnknownCharacter", "identity_bytes", "identity_filename", "load_panels", "load_project",
           "lookup_identity", "panels_from_json", "save_project"]


def _read_loras(data: Mapping[str, Any], source: str) -> tuple[LoraChoice, ...]:
    """``loras`` of a project: a list of ``{"name": text, "weight": number}`` (absent: none)."""
    raw = data.get("loras", [])
    if not isinstance(raw, list):
        raise ProjectError(f"{source}: 'loras' must be a list")
    choices = []
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else None
        weight = item.get("weight") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name or len(name) > 200 or \
                isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ProjectError(f"{source}: each of 'loras' must be {{\"name\": text, \"weight\": number}}")
        choices.append(LoraChoice(name, float(weight)))
    return tuple(choices)
