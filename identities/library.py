"""The identity library: learned identities on disk, one folder each, written atomically.

Layout (``embeddings/`` by default)::

    embeddings/
      ada-lovelace/                 # a safe slug of the name; the real name is in the metadata
        identity.safetensors        # clip_l (2, d1) + clip_g (2, d2) float32, with metadata
        face.png                    # the aligned face crop (the thumbnail), optional

``identity.safetensors`` is the SDXL textual-inversion layout that AUTOMATIC1111, ComfyUI and
diffusers' ``load_textual_inversion`` read. Its safetensors metadata holds ``name``, ``pronouns``,
``description`` (appearance and outfit, put into every panel prompt; see :meth:`IdentityLibrary.describe`),
``base_model``, ``preset``, ``steps``, ``created``, ``photo_sha256``, ``text_encoders`` (the
fingerprint of the base's token tables, :mod:`models.fingerprint`), ``format``,
``format_version`` and ``token_count``, and for the app alone ``final_loss``, ``warnings``,
``imported_from`` and ``imported`` (:meth:`IdentityLibrary.export` leaves those out).

Writes never leave half an identity: an entry is built in a hidden temporary folder inside the
library and renamed into place; an overwrite first moves the old folder aside and only deletes it
once the new one is in place. Hidden folders (``.tmp.*``, ``.old.*``, ``.del.*``) left by a crash
are ignored when reading and tidied (or restored) by the next write. Damaged entries are reported
by :meth:`IdentityLibrary.problems` and skipped, never fatal. Only safetensors is read or written;
pickles are refused.
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import safetensors.torch
import torch
from PIL import Image
from safetensors import safe_open

from core.files import write_bytes_atomic
from core.crash import crash_point
from identities.names import (InvalidDescription, InvalidName, InvalidPronouns, LibraryError,
                              clean_description, name_key, parse_pronouns, refused_character, show,
                              validate_name)

try:  # POSIX advisory locks serialise writers (threads and processes); elsewhere none
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:  # pragma: no cover
    from configs import AppConfig
    from stableidentity.trainer import TrainedIdentity

FORMAT = "comic-identity"
FORMAT_VERSION = 1
TENSOR_KEYS = ("clip_l", "clip_g")
TOKEN_COUNT = 2
IDENTITY_FILE = "identity.safetensors"
FACE_FILE = "face.png"
LOCK_FILE = ".lock"
#: Folders of a library root that are never identities: shipped examples, and the per-owner
#: libraries and saved comics of multi-user mode (see identities.owners).
RESERVED_FOLDERS = frozenset({"examples", "users", "comics"})
THUMBNAIL_MAX = 512
SLUG_MAX = 40
PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle"})
_TMP, _OLD, _DEL = ".tmp.", ".old.", ".del."
#: Metadata an exported file keeps: what another tool or person needs (internal notes such as the
#: library's ``warnings`` stay home).
EXPORT_METADATA = ("format", "format_version", "name", "pronouns", "token_count", "base_model",
                   "preset", "steps", "created", "photo_sha256", "description",
                   "text_encoders")
_TMP_FILE = ".tmp-"

FaceInput = Image.Image | np.ndarray | str | os.PathLike


class IdentityNotFound(LibraryError):
    """No identity of that name in the library."""


class IdentityExists(LibraryError):
    """An identity of that name exists already (and overwrite was not asked for)."""


@dataclass(frozen=True)
class Identity:
    """One learned identity as stored in the library.

    Equality and hashing use ``name``, ``pronouns`` and ``folder`` (not the tensors).
    """

    name: str
    pronouns: str
    clip_l: torch.Tensor = field(compare=False, repr=False)
    clip_g: torch.Tensor = field(compare=False, repr=False)
    metadata: dict[str, str] = field(compare=False, repr=False)
    folder: Path

    @property
    def face_path(self) -> Path | None:
        """The face thumbnail, or None when the entry has none."""
        path = self.folder / FACE_FILE
        return path if path.is_file() else None

    @property
    def description(self) -> str:
        """The stored description ("short grey hair, red scarf"); "" when none or unreadable."""
        try:
            return clean_description(self.metadata.get("description", ""))
        except InvalidDescription:
            return ""

    @property
    def token_count(self) -> int:
        """Vectors (signal words) per text encoder: 2."""
        return int(self.clip_l.shape[0])

    @property
    def dims(self) -> tuple[int, int]:
        """Widths of the two text encoders this identity was made for: (768, 1280) for SDXL."""
        return int(self.clip_l.shape[1]), int(self.clip_g.shape[1])

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``{"clip_l": ..., "clip_g": ...}``, the textual-inversion layout."""
        return {"clip_l": self.clip_l, "clip_g": self.clip_g}


@dataclass(frozen=True)
class LibraryProblem:
    """A library folder that could not be read as an identity, and why."""

    folder: Path
    message: str


@dataclass(frozen=True)
class _Entry:
    """One scanned folder: an identity, or a problem (with the name when it could be read)."""

    folder: Path
    name: str | None
    identity: Identity | None = None
    problem: str | None = None


# ----------------------------------------------------------------------------- helpers

def now_iso() -> str:
    """The current UTC time as ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def slugify(name: str) -> str:
    """A safe, lowercase ASCII folder name for ``name`` ("Zoë O'Brien" -> "zoe-o-brien")."""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:SLUG_MAX].strip("-")
    return slug or "identity"


def check_embeddings(clip_l: Any, clip_g: Any, *, expected_dims: tuple[int, int] | None = None,
                     source: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """Validate the two embedding matrices; return float32 CPU copies.

    Each must be a finite floating (2, d) tensor (one row per signal word); with
    ``expected_dims=(d1, d2)`` the widths must match the model's text encoders.

    Raises:
        LibraryError: one line naming the tensor and what is wrong.
    """
    where = f"{source}: " if source else ""
    widths = tuple(v.shape[1] if isinstance(v, (torch.Tensor, np.ndarray)) and v.ndim == 2 else None
                   for v in (clip_l, clip_g))
    if expected_dims and expected_dims[0] != expected_dims[1] and widths == tuple(expected_dims[::-1]):
        raise LibraryError(f"{where}clip_l and clip_g are swapped (clip_l is {widths[0]} wide, clip_g "
                           f"{widths[1]}); this model needs clip_l {expected_dims[0]} and clip_g "
                           f"{expected_dims[1]} wide")
    out = []
    for key, value, expected in zip(TENSOR_KEYS, (clip_l, clip_g), expected_dims or (None, None)):
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        if not isinstance(value, torch.Tensor):
            raise LibraryError(f"{where}{key} must be a tensor, not {type(value).__name__}")
        shape = tuple(value.shape)
        if value.ndim != 2 or shape[1] == 0:
            raise LibraryError(f"{where}{key} must have shape ({TOKEN_COUNT}, width), got {shape}")
        if shape[0] != TOKEN_COUNT:
            raise LibraryError(f"{where}{key} holds {shape[0]} vector{'' if shape[0] == 1 else 's'}; "
                               f"an identity needs exactly "
                               f"{TOKEN_COUNT} (one per signal word)")
        if expected is not None and shape[1] != expected:
            raise LibraryError(f"{where}{key} has width {shape[1]} but this model's text encoder "
                               f"needs {expected} (made for a different base model?)")
        if not value.is_floating_point():
            raise LibraryError(f"{where}{key} must hold floating-point numbers, not {value.dtype}")
        value = value.detach().to(device="cpu", dtype=torch.float32).contiguous().clone()
        if not torch.isfinite(value).all():
            raise LibraryError(f"{where}{key} contains NaN or infinite values")
        out.append(value)
    return out[0], out[1]


def _looks_like_pickle(head: bytes) -> bool:
    """torch.save zip archives and raw pickles (protocol 2+) by their first bytes."""
    return head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def read_embedding_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read ``clip_l`` / ``clip_g`` and the metadata of a .safetensors embedding (never unpickles).

    Raises:
        LibraryError: missing file, larger than ``identity_bytes`` (``configs/limits.yaml``), a
            pickle, not safetensors, or no SDXL tensors.
    """
    path = Path(path)
    if not path.exists():
        raise LibraryError(f"file not found: {path}")
    if not path.is_file():
        raise LibraryError(f"{path} is not a file")
    from configs import load_limits

    limits = load_limits()
    size = path.stat().st_size
    if size > limits.identity_bytes:  # an SDXL identity is about 16 KB
        raise LibraryError(limits.refusal(f"{show(path.name)} ({size:,} bytes)", "identity_bytes"))
    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in TENSOR_KEYS if key in keys}
    except Exception:  # safetensors raises its own error types for every kind of bad header
        # only now look for a pickle: a valid safetensors header length can start with 0x80 too
        try:
            with open(path, "rb") as handle:
                head = handle.read(8)
        except OSError as exc:
            raise LibraryError(f"cannot read {path}: {exc.strerror or exc}") from None
        if _looks_like_pickle(head) or path.suffix.lower() in PICKLE_SUFFIXES:
            raise LibraryError(f"{path.name} is a pickle (PyTorch .pt/.bin) file, which can run "
                               "code when loaded; only .safetensors embeddings are accepted") from None
        raise LibraryError(f"{path.name} is not a valid .safetensors file") from None
    missing = [key for key in TENSOR_KEYS if key not in tensors]
    if missing:
        found = ", ".join(keys[:3]) + (", …" if len(keys) > 3 else "") if keys else "nothing"
        kind = " (a single-encoder SD 1.x/2.x embedding?)" if len(keys) == 1 or "emb_params" in keys \
            else ""
        raise LibraryError(f"{path.name} has no {' or '.join(missing)} tensor{kind}; only SDXL "
                           f"textual-inversion embeddings (clip_l + clip_g) can be imported "
                           f"(found: {found})")
    return tensors, metadata


def load_face(face: FaceInput) -> Image.Image:
    """A face thumbnail as an RGB image at most ``THUMBNAIL_MAX`` pixels on its longer side.

    Raises:
        LibraryError: unreadable path or unsupported array/object.
    """
    from faces.photos import PhotoError, load_photo

    if isinstance(face, Image.Image):
        image = Image.fromarray(load_photo(face).rgb)
    elif isinstance(face, np.ndarray):
        array = face
        if array.dtype != np.uint8 or array.ndim not in (2, 3) or (
                array.ndim == 3 and array.shape[2] not in (3, 4)):
            raise LibraryError(f"face image array must be uint8 HxW or HxWx3/4, got {array.dtype} "
                               f"{tuple(array.shape)}")
        image = Image.fromarray(np.ascontiguousarray(array)).convert("RGB")
    elif isinstance(face, (str, os.PathLike)):
        path = Path(face)
        if not path.is_file():
            raise LibraryError(f"face image not found: {path}")
        try:
            image = Image.fromarray(load_photo(path).rgb)  # size-capped, any mode -> 8-bit RGB
        except PhotoError as exc:
            raise LibraryError(f"{show(path.name)} is not a usable image: {exc}") from None
    else:
        raise LibraryError(f"face must be an image, an array or a path, not {type(face).__name__}")
    if max(image.size) > THUMBNAIL_MAX:
        image.thumbnail((THUMBNAIL_MAX, THUMBNAIL_MAX))
    return image


def _fsync(path: Path) -> None:
    """Flush a file (or, best effort, a folder) to disk."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save_tensors(path: Path, clip_l: torch.Tensor, clip_g: torch.Tensor,
                  metadata: dict[str, str]) -> None:
    safetensors.torch.save_file({"clip_l": clip_l, "clip_g": clip_g}, str(path), metadata=metadata)
    _fsync(path)


def _read_entry(folder: Path) -> _Entry | None:
    """Read one library folder; None when it vanished while reading (a concurrent write)."""
    file = folder / IDENTITY_FILE
    if not file.is_file():
        if not folder.is_dir():
            return None
        return _Entry(folder, None, problem=f"no {IDENTITY_FILE} in this folder")
    try:
        with safe_open(str(file), framework="pt") as handle:
            keys = set(handle.keys())
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in TENSOR_KEYS if key in keys}
    except FileNotFoundError:
        return None
    except Exception:  # any header or data error: the file is damaged
        return _Entry(folder, None, problem=f"{IDENTITY_FILE} is not a readable safetensors file")
    try:
        name = validate_name(metadata.get("name", ""))
    except InvalidName:
        return _Entry(folder, None, problem=f"{IDENTITY_FILE} has no valid 'name' in its metadata")
    version = metadata.get("format_version", "1")
    if not version.isdigit() or int(version) > FORMAT_VERSION:
        return _Entry(folder, name, problem=f"written in format version {show(version)}, newer "
                                            f"than this program's ({FORMAT_VERSION}); update it")
    missing = [key for key in TENSOR_KEYS if key not in tensors]
    if missing:
        return _Entry(folder, name, problem=f"{IDENTITY_FILE} lacks the {' and '.join(missing)} "
                                            "tensor")
    try:
        clip_l, clip_g = check_embeddings(tensors["clip_l"], tensors["clip_g"])
    except LibraryError as exc:
        return _Entry(folder, name, problem=str(exc))
    try:
        pronouns = parse_pronouns(metadata.get("pronouns", ""))
    except InvalidPronouns:
        pronouns = ""
    identity = Identity(name=name, pronouns=pronouns, clip_l=clip_l, clip_g=clip_g,
                        metadata=metadata, folder=folder)
    return _Entry(folder, name, identity=identity)


def check_imported_metadata(metadata: dict[str, str], source: str) -> None:
    """Refuse metadata values from an imported file that are too long (``metadata_chars`` in
    ``configs/limits.yaml``), hold markup (``< > & ```) or non-printable characters.

    Raises:
        LibraryError: one line naming the field and the rule.
    """
    from configs import load_limits

    limits = load_limits()
    for key, value in metadata.items():
        where = f"{show(source)}: metadata field '{key}'"
        if len(value) > limits.metadata_chars:
            raise LibraryError(limits.refusal(f"{where} ({len(value):,} characters)",
                                              "metadata_chars"))
        bad = refused_character(value)
        if bad is not None:
            raise LibraryError(f"{where} contains {show(bad)}; markup and control characters are "
                               "not accepted")


def _build_metadata(name: str, pronouns: str, extra: dict[str, Any] | None) -> dict[str, str]:
    metadata = {str(k): str(v) for k, v in (extra or {}).items() if v is not None}
    metadata.setdefault("created", now_iso())
    metadata.update(format=FORMAT, format_version=str(FORMAT_VERSION), name=name,
                    pronouns=pronouns, token_count=str(TOKEN_COUNT))
    return metadata


# ----------------------------------------------------------------------------- the library

class IdentityLibrary:
    """Identities stored under ``root`` (created on the first write)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"IdentityLibrary({str(self.root)!r})"

    # ------------------------------------------------------------------ reading

    def _folders(self) -> list[Path]:
        """Entry folders: visible subfolders, plus any moved-aside entry whose write never
        finished (its original folder is missing), so a crash never hides an identity."""
        if not self.root.exists():
            return []
        if not self.root.is_dir():
            raise LibraryError(f"the identity library {self.root} is a file, not a folder")
        try:
            children = sorted(self.root.iterdir())
        except OSError as exc:
            raise LibraryError(f"cannot read the identity library {self.root}: "
                               f"{exc.strerror or exc}") from None
        visible = {c.name for c in children if not c.name.startswith(".")}
        folders = []
        for child in children:
            if not child.is_dir():
                continue
            if child.name.startswith(_OLD):
                original = child.name.split(".", 3)[-1]
                if original not in visible:
                    visible.add(original)
                    folders.append(child)
            elif not child.name.startswith(".") and child.name not in RESERVED_FOLDERS:
                folders.append(child)
        return folders

    def _scan(self) -> list[_Entry]:
        """Every entry, identities sorted by name. When two folders hold the same name, the one
        named after it (its slug) wins and the other is reported as a problem."""
        entries = [e for e in map(_read_entry, self._folders()) if e is not None]
        entries.sort(key=lambda e: (name_key(e.name or ""),
                                    e.folder.name != slugify(e.name or ""), e.folder.name))
        seen: dict[str, Path] = {}
        result = []
        for entry in entries:
            if entry.identity is not None:
                key = name_key(entry.name or "")
                if key in seen:
                    entry = _Entry(entry.folder, entry.name,
                                   problem=f"another folder ({seen[key].name}) holds "
                                           f"{show(entry.name or '')} too; delete one of them")
                else:
                    seen[key] = entry.folder
            result.append(entry)
        return result

    def list(self) -> list[Identity]:
        """Every readable identity, sorted by name (damaged entries skipped)."""
        return [e.identity for e in self._scan() if e.identity is not None]

    def problems(self) -> list[LibraryProblem]:
        """Folders that could not be read as identities, with a one-line reason each."""
        return [LibraryProblem(e.folder, e.problem) for e in self._scan() if e.problem is not None]

    def names(self) -> list[str]:
        """Names of the readable identities, sorted."""
        return [identity.name for identity in self.list()]

    def refuse_confusable(self, name: str, besides: str | None = None) -> None:
        """IdentityExists when ``name`` reads the same as another identity's name (Unicode's
        confusables skeleton, :mod:`identities.confusables`: "Аda Lovelace" with a Cyrillic А
        beside "Ada Lovelace"); ``besides`` (the identity being renamed) is not compared."""
        from identities.confusables import confusable_with

        others = [e.name for e in self._scan() if e.name is not None
                  and (besides is None or name_key(e.name) != name_key(besides))]
        similar = confusable_with(name, others)
        if similar is not None:
            raise IdentityExists(f"{show(name)} reads the same as the existing identity "
                                 f"{show(similar)}; choose another name")

    def _find(self, name: str) -> _Entry | None:
        """The entry (readable or damaged) whose name matches ``name``."""
        key = name_key(name)
        matches = [e for e in self._scan() if e.name is not None and name_key(e.name) == key]
        readable = [e for e in matches if e.identity is not None]
        return (readable or matches or [None])[0]

    def get(self, name: str) -> Identity:
        """The identity called ``name`` (case-insensitive, spaces normalised).

        Raises:
            IdentityNotFound: no such identity.
            LibraryError: it exists but is damaged.
        """
        if not isinstance(name, str):
            raise IdentityNotFound(f"no identity named {show(str(name))}")
        entry = self._find(name)
        if entry is None:
            known = self.names()
            hint = f" (known: {', '.join(known[:5])}{', …' if len(known) > 5 else ''})" \
                if known else " (the library is empty)"
            raise IdentityNotFound(f"no identity named {show(name)} in {self.root}{hint}")
        if entry.identity is None:
            raise LibraryError(f"identity {show(entry.name or name)} in {entry.folder} is damaged: "
                               f"{entry.problem}")
        return entry.identity

    def __contains__(self, name: object) -> bool:
        """True when an entry holds that name (even a damaged one: the name is taken)."""
        return isinstance(name, str) and self._find(name) is not None

    # ------------------------------------------------------------------ writing

    @contextmanager
    def _writing(self, action: str) -> Iterator[None]:
        """Hold the library's write lock, tidy crash leftovers first, and turn OS errors into
        one-line LibraryErrors."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(self.root / LOCK_FILE, "a+b") as lock:
                if fcntl is not None:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
                try:
                    self._recover()
                    yield
                finally:
                    if fcntl is not None:
                        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        except OSError as exc:
            detail = exc.strerror or str(exc)
            raise LibraryError(f"cannot {action} in {self.root}: {detail}") from None

    def _recover(self) -> None:
        """Finish or undo what a crashed write left: drop temp and deleted folders, restore a
        moved-aside entry whose replacement never arrived, drop stray temp files in entries."""
        for child in sorted(self.root.iterdir()):
            if child.name.startswith((_TMP, _DEL)) and child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            elif child.name.startswith(_OLD) and child.is_dir():
                original = self.root / child.name.split(".", 3)[-1]
                if original.exists():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    os.rename(child, original)
        for child in self.root.iterdir():
            if child.is_dir() and not child.name.startswith("."):
                for stray in child.glob(f"{_TMP_FILE}*"):
                    stray.unlink(missing_ok=True)

    def _aside(self, prefix: str, folder: Path) -> Path:
        return self.root / f"{prefix}{uuid.uuid4().hex[:12]}.{folder.name}"

    def _new_folder(self, name: str) -> Path:
        """A free folder for ``name``: its slug, or the slug with -2, -3, ..."""
        base = slugify(name)
        candidate, number = base, 2
        while candidate in RESERVED_FOLDERS or (self.root / candidate).exists():
            candidate, number = f"{base}-{number}", number + 1
        return self.root / candidate

    def _swap_in(self, staged: Path, dest: Path) -> None:
        """Rename the complete ``staged`` folder to ``dest``; an existing ``dest`` is moved aside
        first and deleted only after the new entry is in place (restored if the move fails)."""
        if not dest.exists():
            os.rename(staged, dest)
            return
        aside = self._aside(_OLD, dest)
        os.rename(dest, aside)
        try:
            os.rename(staged, dest)
        except BaseException:
            os.rename(aside, dest)
            raise
        shutil.rmtree(aside, ignore_errors=True)

    def add(self, name: str, clip_l: torch.Tensor, clip_g: torch.Tensor, *,
            face: FaceInput | None = None, pronouns: str = "",
            metadata: dict[str, Any] | None = None, overwrite: bool = False) -> Identity:
        """Store a new identity (or replace one with ``overwrite=True``) atomically.

        Args:
            name: the person's name (validated, see :func:`identities.names.validate_name`).
            clip_l, clip_g: (2, d1) and (2, d2) embeddings for SDXL's two text encoders.
            face: the aligned face crop for the thumbnail (image, uint8 array or path).
            pronouns: he / she / they (normalised) or "".
            metadata: extra metadata (base_model, preset, steps, photo_sha256, ...); values are
                stored as strings. ``name``, ``pronouns`` and the format keys are set here.
            overwrite: replace an existing identity of the same name.
        Raises:
            InvalidName, InvalidPronouns, IdentityExists, LibraryError.
        """
        name = validate_name(name)
        pronouns = parse_pronouns(pronouns)
        clip_l, clip_g = check_embeddings(clip_l, clip_g)
        image = load_face(face) if face is not None else None
        meta = _build_metadata(name, pronouns, metadata)
        with self._writing("save the identity"):
            existing = self._find(name)
            if existing is not None and not overwrite:
                raise IdentityExists(f"an identity named {show(existing.name or name)} already "
                                     "exists; choose another name or overwrite it")
            self.refuse_confusable(name)
            dest = existing.folder if existing is not None else self._new_folder(name)
            staged = self._aside(_TMP, dest)
            try:
                staged.mkdir()
                _save_tensors(staged / IDENTITY_FILE, clip_l, clip_g, meta)
                if image is not None:
                    image.save(staged / FACE_FILE, format="PNG")
                    _fsync(staged / FACE_FILE)
                _fsync(staged)
                crash_point("library-add")
                self._swap_in(staged, dest)
            except BaseException:
                shutil.rmtree(staged, ignore_errors=True)
                raise
            _fsync(self.root)
        return Identity(name=name, pronouns=pronouns, clip_l=clip_l, clip_g=clip_g,
                        metadata=meta, folder=dest)

    def rename(self, old: str, new: str) -> Identity:
        """Give an identity a new name (its metadata first, then its folder; each step atomic).

        Raises:
            IdentityNotFound, IdentityExists, InvalidName, LibraryError.
        """
        new = validate_name(new)
        with self._writing("rename the identity"):
            identity = self.get(old)
            if name_key(new) != name_key(identity.name) and self._find(new) is not None:
                raise IdentityExists(f"an identity named {show(new)} already exists")
            self.refuse_confusable(new, besides=identity.name)
            meta = dict(identity.metadata, name=new)
            folder = identity.folder
            staged = folder / f"{_TMP_FILE}{uuid.uuid4().hex[:12]}-{IDENTITY_FILE}"
            try:
                _save_tensors(staged, identity.clip_l, identity.clip_g, meta)
                os.replace(staged, folder / IDENTITY_FILE)
            except BaseException:
                staged.unlink(missing_ok=True)
                raise
            if slugify(new) != slugify(identity.name):
                dest = self._new_folder(new)
                os.rename(folder, dest)
                folder = dest
            _fsync(self.root)
        return Identity(name=new, pronouns=identity.pronouns, clip_l=identity.clip_l,
                        clip_g=identity.clip_g, metadata=meta, folder=folder)

    def describe(self, name: str, description: str) -> Identity:
        """Store ``description`` (appearance, outfit) in identity ``name``'s metadata ("" clears
        it); the tensors file is rewritten atomically, the folder stays.

        Raises:
            IdentityNotFound, InvalidDescription (see :func:`identities.names.clean_description`),
            LibraryError.
        """
        text = clean_description(description)
        with self._writing("describe the identity"):
            identity = self.get(name)
            meta = {k: v for k, v in identity.metadata.items() if k != "description"}
            if text:
                meta["description"] = text
            staged = identity.folder / f"{_TMP_FILE}{uuid.uuid4().hex[:12]}-{IDENTITY_FILE}"
            try:
                _save_tensors(staged, identity.clip_l, identity.clip_g, meta)
                os.replace(staged, identity.folder / IDENTITY_FILE)
            except BaseException:
                staged.unlink(missing_ok=True)
                raise
        return replace(identity, metadata=meta)

    def delete(self, name: str) -> None:
        """Remove an identity (also a damaged one whose name can be read).

        Raises:
            IdentityNotFound: no such identity.
        """
        with self._writing("delete the identity"):
            entry = self._find(name)
            if entry is None:
                self.get(name)  # raises IdentityNotFound with the known names
                return  # pragma: no cover
            trash = self._aside(_DEL, entry.folder)
            os.rename(entry.folder, trash)
            crash_point("library-delete")
            shutil.rmtree(trash, ignore_errors=True)

    def import_file(self, path: str | os.PathLike, name: str, *, pronouns: str = "",
                    face: FaceInput | None = None, overwrite: bool = False,
                    expected_dims: tuple[int, int] | None = None) -> Identity:
        """Add an identity from a .safetensors embedding: one exported by this program, or an
        AUTOMATIC1111 / ComfyUI SDXL embedding with ``clip_l`` and ``clip_g`` tensors.

        Exactly 2 vectors per encoder are accepted (one per signal word); embeddings with
        another vector count are refused with a message saying so. Pickle files are refused.

        Args:
            expected_dims: (d1, d2) the current model needs, e.g. (768, 1280) for SDXL.
            pronouns: when empty, the pronouns stored in the file (if any) are kept.
        Raises:
            LibraryError (and its subclasses) with a one-line message.
        """
        name = validate_name(name)
        path = Path(path)
        tensors, file_meta = read_embedding_file(path)
        clip_l, clip_g = check_embeddings(tensors["clip_l"], tensors["clip_g"],
                                          expected_dims=expected_dims, source=path.name)
        metadata: dict[str, str] = {}
        if file_meta.get("format") == FORMAT:
            metadata = {k: file_meta[k] for k in ("base_model", "preset", "steps", "created",
                                                  "photo_sha256", "final_loss", "description",
                                                  "text_encoders")
                        if k in file_meta}
            check_imported_metadata(metadata, path.name)
            if not pronouns:
                try:
                    pronouns = parse_pronouns(file_meta.get("pronouns", ""))
                except InvalidPronouns:
                    pronouns = ""
        metadata.update(imported_from=path.name, imported=now_iso())
        return self.add(name, clip_l, clip_g, face=face, pronouns=pronouns, metadata=metadata,
                        overwrite=overwrite)

    def export(self, name: str, path: str | os.PathLike) -> Path:
        """Write identity ``name`` as a standalone .safetensors file that AUTOMATIC1111, ComfyUI
        and diffusers can load; replaces ``path`` atomically. Same tensors; of the metadata only
        the keys in :data:`EXPORT_METADATA`; file mode 0644 (``core.files.FILE_MODE``).

        A path without a suffix gets ``.safetensors``; any other suffix is refused.
        """
        identity = self.get(name)
        path = Path(path)
        if path.suffix == "":
            path = path.with_suffix(".safetensors")
        if path.suffix.lower() != ".safetensors":
            raise LibraryError(f"export to a .safetensors file, not {show(path.name)}")
        if path.is_dir():
            raise LibraryError(f"{path} is a folder; give a file name ending in .safetensors")
        if not path.parent.is_dir():
            raise LibraryError(f"folder not found: {path.parent}")
        shared = {k: identity.metadata[k] for k in EXPORT_METADATA if k in identity.metadata}
        try:
            return write_bytes_atomic(path, safetensors.torch.save(identity.state_dict(), metadata=shared))
        except OSError as exc:
            raise LibraryError(f"cannot write {path}: {exc.strerror or exc}") from None


def save_trained(library: IdentityLibrary, name: str, trained: "TrainedIdentity", *,
                 pronouns: str, config: "AppConfig", overwrite: bool = False,
                 job_id: str | None = None, encoders: str | None = None) -> Identity:
    """Store a freshly trained identity with metadata taken from ``config`` and the run
    (``job_id``: the app's training job, stored as metadata ``job``; ``encoders``: the
    :class:`models.fingerprint.EncoderFingerprint` text of the base it was learned on, stored as
    ``text_encoders``)."""
    metadata = {
        "base_model": config.model.base_name,
        "preset": config.name,
        "steps": str(trained.steps),
        "photo_sha256": trained.photo_sha256,
        "final_loss": f"{trained.final_loss:.6g}",
    }
    if job_id:
        metadata["job"] = job_id
    if encoders:
        metadata["text_encoders"] = encoders
    if trained.warnings:
        metadata["warnings"] = " | ".join(trained.warnings)
    return library.add(name, trained.clip_l, trained.clip_g, face=trained.face, pronouns=pronouns,
                       metadata=metadata, overwrite=overwrite)


__all__ = [
    "EXPORT_METADATA", "FORMAT", "FORMAT_VERSION", "Identity", "IdentityExists", "IdentityLibrary", "IdentityNotFound",
    "InvalidName", "InvalidPronouns", "LibraryError", "LibraryProblem", "TOKEN_COUNT",
    "check_embeddings", "check_imported_metadata", "load_face", "read_embedding_file", "save_trained", "slugify",
]
