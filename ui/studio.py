"""The comic-making session behind the web app: everything the Gradio handlers call.

Two kinds of object:

* :class:`Studio` — process-wide services, created once in ``app.py``'s ``main()`` and closed over
  by the handlers: the loaded models (``load_components``' per-process cache), the workspace
  (each owner's identity library + read-only examples, :mod:`stableidentity.owners`), the SQLite
  store of jobs and saved comics, the training service and its queue (one training at a time per
  GPU), the panel generator, face similarity, the style book, the safety filter and a folder for
  downloads. It holds no per-user data.
* :class:`Session` — one browser session's data (``gr.State``): its owner (multi-user mode), the
  cast, a pending deletion, the identities carried by an opened project zip, the drawn comic (every
  candidate, its scores, the chosen one per panel, the pages and the exported files) and the id of
  its saved copy in My comics.

Every operation takes the session explicitly and raises a ``ValueError`` subclass with a one-line
message for anything the user can fix; :func:`user_message` turns any exception into the text the
app shows (never a traceback).
"""

from __future__ import annotations

import logging
import math
import secrets
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from llm import StoryError, parse_story
from pipelines.panel_table import Row, normalise_rows, panels_from_rows, rows_from_panels, set_seed
from pipelines.project import (ComicRequest, EmbeddedIdentity, GenerationError, PanelSpec, Project,
                               ProjectError, UnknownCharacter, load_project)
from pipelines.safety import SafetyFilter, UnsafePrompt
from pipelines.styles import StyleBook, StyleError, load_style_book
from pipelines.saved_comics import ComicNotFound, ComicShelf, SavedComic
from stableidentity.catalog import EXAMPLES_DIR, CatalogEntry, IdentityCatalog
from stableidentity.jobs import TrainingQueue
from stableidentity.names import LibraryError, name_key, one_line, show
from stableidentity.owners import LOCAL, Owner, Workspace, resolve_owner
from stableidentity.store import DB_FILE, Store
from stableidentity.training_service import TrainingService
from stableidentity.zero_gpu import ZeroGPUTraining, on_zero_gpu

if TYPE_CHECKING:  # pragma: no cover
    from configs import AppConfig
    from pipelines.generation import PanelGenerator, PanelResult
    from pipelines.layout import Box
    from pipelines.loading import Components
    from stableidentity.similarity import FaceSimilarity, PanelScore

logger = logging.getLogger(__name__)

#: Largest seed the app offers (the generator accepts more; 2**31 keeps the number field exact).
MAX_UI_SEED = 2**31 - 1
PLACEHOLDER_FACE = "no_face.png"


class StudioError(ValueError):
    """Something the user can fix, said in one line."""


class ModelsUnavailable(StudioError):
    """The models failed to load at start-up; the message says why."""


# ----------------------------------------------------------------------------- messages

def _user_error_types() -> tuple[type[BaseException], ...]:
    """Exception types whose message is meant for the user as it is."""
    from configs import ConfigError
    from pipelines.binding import BindingError
    from stableidentity.face_prep import FacePrepError

    return (StudioError, LibraryError, FacePrepError, StoryError, UnsafePrompt, GenerationError,
            ProjectError, StyleError, BindingError, ConfigError)


def user_message(exc: BaseException) -> str:
    """The one-line text to show for ``exc``.

    Known user errors keep their message; anything else is logged with its traceback and shown as
    a short "something went wrong" line naming the error type.
    """
    if isinstance(exc, _user_error_types()):
        text = one_line(str(exc)) or type(exc).__name__  # control and bidi characters escaped
        first = text.split(" ", 1)[0]
        return text[0].upper() + text[1:] if first.isalpha() else text
    logger.error("unexpected error in the app", exc_info=exc)
    detail = one_line(str(exc))[:200]
    return (f"Something went wrong ({type(exc).__name__}{': ' + detail if detail else ''}). "
            "The details are in the server log; the app keeps working.")


# ----------------------------------------------------------------------------- session data


@dataclass
class StyleSettings:
    """The Style and settings step: what every panel of the next comic is drawn with."""

    style: str
    keywords: tuple[str, ...] = ()
    negative_prompt: str = ""
    seed: int = 0
    randomize: bool = False
    steps: int = 30
    guidance: float = 8.5
    width: int = 1024
    height: int = 1024
    candidates: int = 1
    title: str = ""
    face_pass: bool = True


@dataclass
class DrawnPanel:
    """Every candidate of one drawn panel, their face-similarity scores and the chosen one."""

    text: str
    results: list["PanelResult"]
    scores: list["PanelScore | None"]
    chosen: int = 0
    faces: dict[int, list["Box"]] = field(default_factory=dict)

    @property
    def image(self) -> Image.Image:
        return self.results[self.chosen].image

    @property
    def faces_caption(self) -> str:
        """Which face is whose in the chosen candidate, as the face pass matched them
        ("left face: Ada Lovelace · right face: Alan Turing"); "" when it redrew none."""
        from pipelines.face_pass import faces_caption

        result = self.results[self.chosen]
        return faces_caption(result.faces, result.image.width)

    def chosen_faces(self, detector: Any) -> list["Box"]:
        """Face boxes of the chosen candidate, for speech bubbles; found once per candidate.

        A scored candidate already went through the detector: its score carries the boxes.
        """
        from pipelines.layout import detect_faces, face_boxes

        if self.chosen not in self.faces:
            score = self.scores[self.chosen]
            self.faces[self.chosen] = face_boxes(score.face_boxes) if score is not None \
                else detect_faces(detector, [self.image])[0]
        return self.faces[self.chosen]


@dataclass
class Comic:
    """The session's drawn comic.

    ``page_files`` are the exported page PNGs: the pages gallery shows these files, so Gradio
    copies them instead of encoding every page again on each event (0.6 s of shared CPU per
    1600 px page).
    """

    request: ComicRequest
    title: str
    panels: list[DrawnPanel]
    pages: list[Image.Image] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    page_files: list[str] = field(default_factory=list)


@dataclass
class Session:
    """One browser session (kept in ``gr.State``; never shared between sessions).

    Attributes:
        id: names the session's download folder (given on first export: ``gr.State`` deep-copies
            its initial value, so a default id would be shared by every session).
        cast: full names of the story's characters, in the order added.
        pending_delete: the identity awaiting a confirmed deletion.
        embedded: identities carried by an opened project zip (used when the library lacks them).
        restored: the opened project; its candidate choices apply while its request is unchanged.
        comic: the drawn comic, or None (kept until a new one is complete).
        story: the story text last parsed (or restored from a project); saved with the comic.
        drawing: the panels of a comic being drawn, while Generate runs.
        owner: whose library and comics this session uses (multi-user mode; set by
            :meth:`Studio.sign_in` or on first use). saved_id: the drawn comic's id in My comics.
    """

    id: str = ""
    owner: Owner | None = None
    saved_id: str = ""
    cast: list[str] = field(default_factory=list)
    pending_delete: str | None = None
    embedded: dict[str, EmbeddedIdentity] = field(default_factory=dict)
    restored: Project | None = None
    comic: Comic | None = None
    story: str = ""
    drawing: Comic | None = None


@dataclass(frozen=True)
class ParseOutcome:
    """The story parser's panels as table rows, and what to tell the user about them.

    Attributes:
        addable: library identities the story names that are not in the cast (one click adds).
    """

    rows: list[Row]
    info: str
    warnings: tuple[str, ...] = ()
    addable: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComicUpdate:
    """One step of drawing: the panels so far (with captions) and, at the end, pages and files."""

    gallery: list[tuple[Image.Image, str]]
    status: str
    seed: int
    notes: str = ""
    done: bool = False
    pages: list[str] = field(default_factory=list)  # page PNG files
    files: list[str] = field(default_factory=list)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RestoredProject:
    """What opening a project puts back into the app (``story``: "" when the file has none)."""

    rows: list[Row]
    settings: StyleSettings
    cast: list[str]
    info: str
    warnings: tuple[str, ...] = ()
    story: str = ""


@dataclass(frozen=True)
class PanelCard:
    """What the Comic step shows for one panel.

    Attributes:
        image: the chosen candidate.
        text: markdown: number, sentence, face score, seed and candidate.
        candidates: (image, caption) of every candidate (one: no choice to make).
    """

    image: Image.Image
    text: str
    candidates: list[tuple[Image.Image, str]]


# ----------------------------------------------------------------------------- the studio


def _load_models(config: "AppConfig") -> "tuple[Components | None, str | None]":
    """Load the models once per process and build (and, with ``runtime.compile``, warm) the
    panel generator: ``(components, None)``, or ``(None, one-line message)`` (also printed)."""
    from pipelines.generation import panel_generator
    from pipelines.loading import load_components

    try:
        components = load_components(config)
        generator = panel_generator(components)  # built once per process, before any click
        if config.runtime.compile:
            generator.warm_up()  # compile the UNet now, not on the first Generate
    except Exception as exc:  # noqa: BLE001 - the page must still come up
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: the models could not be loaded: {message}", file=sys.stderr, flush=True)
        logger.debug("model loading failed", exc_info=exc)
        return None, message
    return components, None


class Studio:
    """Process-wide services for the app (see the module docstring).

    Args:
        config: the preset.
        components: the loaded models, or None with ``load_error`` saying why they are missing.
        loading: the models are being loaded (:meth:`create_in_background`); until then
            model-backed operations raise :class:`ModelsUnavailable` saying so.
        examples_dir: read-only shipped identities (``embeddings/examples``).
        export_root: where each session's downloads are written (default: a new temp folder).
        queue: the training queue (default: a new one).
        multi_user: a private library per owner (see :mod:`stableidentity.owners`).
        login: owners are Hugging Face logins (a Space), not keys kept in the browser.
        data_root: libraries, saved comics and the database (default: ``config.library_dir``).
    """

    def __init__(self, config: "AppConfig", components: "Components | None" = None, *,
                 load_error: str | None = None, examples_dir: str | Path | None = EXAMPLES_DIR,
                 export_root: str | Path | None = None, queue: TrainingQueue | None = None,
                 styles: StyleBook | None = None, safety: SafetyFilter | None = None,
                 multi_user: bool = False, login: bool = False,
                 data_root: str | Path | None = None, loading: bool = False) -> None:
        self.config = config
        self._components = components
        #: True while :meth:`create_in_background`'s thread is still loading the models
        self.loading = loading and components is None
        self._load_started = time.monotonic()
        self.load_error = load_error if components is None else None
        if components is None and not load_error and not self.loading:
            self.load_error = "the models were not loaded"
        self.login = multi_user and login
        self.workspace = Workspace(data_root if data_root is not None else config.library_dir,
                                   multi_user=multi_user, examples_dir=examples_dir)
        self.store = Store(self.workspace.root / DB_FILE)
        self.shelf = ComicShelf(self.store, self.workspace)
        self.queue = queue or TrainingQueue(on_error=lambda text: logger.error("training failed:\n%s", text))
        self.training = TrainingService(self.components, self.workspace, self.queue, self.store)
        # on a ZeroGPU Space training runs inside spaces.GPU from the Train request (ui/zero_gpu.py)
        self.zero_gpu = ZeroGPUTraining(self.training) if on_zero_gpu() else None
        self.styles = styles or load_style_book()
        self.safety = safety or SafetyFilter.from_file()
        self.export_root = Path(export_root) if export_root is not None else \
            Path(tempfile.mkdtemp(prefix="comic-identity-"))
        self.export_root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._similarity: FaceSimilarity | None = None
        self._similarity_error: str | None = None
        self._references: dict[tuple[str, float], np.ndarray | None] = {}

    @classmethod
    def create(cls, config: "AppConfig", **kwargs: Any) -> "Studio":
        """Load the models (once per process) and warm up the generator and face similarity.

        A loading failure does not raise: the studio keeps the message (shown in the page and
        printed on stderr) and every model-backed operation raises :class:`ModelsUnavailable`.
        """
        components, message = _load_models(config)
        if components is None:
            studio = cls(config, None, load_error=message, **kwargs)
            studio.resume()
            return studio
        studio = cls(config, components, **kwargs)
        studio.similarity()
        studio.resume()
        return studio

    @classmethod
    def create_in_background(cls, config: "AppConfig", **kwargs: Any) -> "Studio":
        """Serve first, load meanwhile: a studio whose models load on a daemon thread.

        The page says the models are loading (:meth:`load_status`; a first run downloads about
        7 GB, with progress in the terminal); model-backed operations raise
        :class:`ModelsUnavailable` saying so until the thread is done. The library, the story
        and the style steps work at once.
        """
        studio = cls(config, None, loading=True, **kwargs)
        studio.shelf.recover()
        queued = studio.training.settle()  # interrupted jobs show so now; queued ones run later
        threading.Thread(target=studio._finish_loading, args=(queued,), name="model-loading",
                         daemon=True).start()
        return studio

    def _finish_loading(self, queued: list | tuple = ()) -> None:
        components, message = _load_models(self.config)
        with self._lock:
            self._components, self.load_error = components, message
            self.loading = False
        if components is not None:
            self.similarity()
        self.training.requeue(list(queued))  # the jobs queued before the restart

    def load_status(self) -> str:
        """Markdown for the page header: loading (with the time so far), the loading error, or
        "" once the models are ready."""
        if self.loading:
            seconds = int(time.monotonic() - self._load_started)
            return (f"**The {self.config.name} models are loading** ({seconds} s so far; a first "
                    "run downloads about 7 GB, with its progress in the terminal). The steps "
                    "that need the models will work once this message is gone.")
        if self.load_error:
            return f"**The models could not be loaded:** {self.load_error}"
        return ""

    def resume(self) -> None:
        """Once at start-up: settle what a previous run left (interrupted and queued training
        jobs, half-saved or half-deleted comics)."""
        self.shelf.recover()
        self.training.resume()

    # ------------------------------------------------------------------ owners

    @property
    def multi_user(self) -> bool:
        return self.workspace.multi_user

    def sign_in(self, session: Session, browser_key: Any = None,
                username: str | None = None) -> str:
        """Set the session's owner on page load; returns the key the browser should keep.

        Single-user: nothing to do. Multi-user on a Space (``login``): the Hugging Face user
        name (None: not logged in, examples only). Multi-user locally: the browser's key, or a
        new one when it has none or a malformed one.
        """
        owner, key = resolve_owner(multi_user=self.multi_user, login=self.login,
                                   browser_key=browser_key, username=username)
        if self.multi_user:
            session.owner = owner
        return key

    def owner_of(self, session: Session) -> Owner | None:
        """The session's owner: LOCAL in single-user mode; in multi-user mode the signed-in one,
        or (locally, for API clients that never loaded the page) a new private key."""
        if not self.multi_user:
            return LOCAL
        if session.owner is None and not self.login:
            session.owner, _ = resolve_owner(multi_user=True, login=False, browser_key=None,
                                             username=None)
        return session.owner

    def catalog_for(self, session: Session) -> IdentityCatalog:
        """The session owner's identities plus the shared read-only examples."""
        return self.workspace.catalog(self.owner_of(session))

    @property
    def catalog(self) -> IdentityCatalog:
        """Single-user mode's catalog (multi-user code uses :meth:`catalog_for`)."""
        return self.workspace.catalog(LOCAL)

    # ------------------------------------------------------------------ services

    def components(self) -> "Components":
        """The loaded models; :class:`ModelsUnavailable` while loading or when loading failed."""
        if self._components is None and self.loading:
            raise ModelsUnavailable(f"the {self.config.name} models are still loading (a first run "
                                    "downloads about 7 GB); try again when the page says they are ready")
        if self._components is None:
            raise ModelsUnavailable(f"the models could not be loaded ({self.load_error}); fix the "
                                    "problem and restart the app")
        return self._components

    def generator(self) -> "PanelGenerator":
        from pipelines.generation import panel_generator

        return panel_generator(self.components())

    def similarity(self) -> "FaceSimilarity | None":
        """Face similarity on the preset's recogniser, or None when it is unavailable."""
        with self._lock:
            if self._similarity is None and self._similarity_error is None:
                from stableidentity.similarity import FaceSimilarity

                try:
                    self._similarity = FaceSimilarity.from_config(
                        self.config.face, detector=self.components().face_detector)
                except ModelsUnavailable:
                    raise
                except Exception as exc:  # noqa: BLE001 - scores are optional
                    self._similarity_error = " ".join(str(exc).split()) or type(exc).__name__
                    print(f"warning: face similarity is unavailable: {self._similarity_error}",
                          file=sys.stderr)
            return self._similarity

    def shutdown(self) -> None:
        """Stop the training queue and remove the downloads folder."""
        self.queue.shutdown()
        shutil.rmtree(self.export_root, ignore_errors=True)
        self.store.close()

    # ------------------------------------------------------------------ defaults

    def default_settings(self) -> StyleSettings:
        gen = self.config.generation
        return StyleSettings(style=self.styles.default_style, keywords=(),
                             negative_prompt=gen.negative_prompt, seed=0, randomize=False,
                             steps=gen.steps, guidance=gen.guidance_scale, width=gen.width,
                             height=gen.height, candidates=gen.candidates, title="",
                             face_pass=gen.face_pass)

    def style_choices(self) -> list[tuple[str, str]]:
        """(label, name) of every style template, for a dropdown."""
        return [(style.label, name) for name, style in self.styles.styles.items()]

    def size_step(self) -> int:
        """Panel sizes must be multiples of this (the VAE's scale factor)."""
        try:
            return int(self.generator().pipe.vae_scale_factor)
        except ModelsUnavailable:
            return 8

    # ------------------------------------------------------------------ library and cast

    def library_entries(self, session: Session) -> list[CatalogEntry]:
        return self.catalog_for(session).entries()

    def library_names(self, session: Session) -> list[str]:
        """Full names of every identity the user can add (library and examples)."""
        return [e.name for e in self.library_entries(session)]

    def placeholder_face(self) -> str:
        path = self.export_root / PLACEHOLDER_FACE
        if not path.is_file():
            Image.new("RGB", (64, 64), (200, 200, 200)).save(path)
        return str(path)

    def gallery_items(self, session: Session) -> list[tuple[str, str]]:
        """(thumbnail path, caption) of every identity, the user's first."""
        return [(str(e.identity.face_path or self.placeholder_face()), e.caption())
                for e in self.library_entries(session)]

    def library_summary(self, session: Session) -> str:
        """One line counting the identities, plus unreadable library folders if any."""
        entries = self.library_entries(session)
        mine = sum(1 for e in entries if not e.read_only)
        text = f"{mine} identit{'y' if mine == 1 else 'ies'} in your library"
        shipped = len(entries) - mine
        if shipped:
            text += f", {shipped} example{'s' if shipped != 1 else ''}"
        if self.multi_user and self.owner_of(session) is None:
            text += " (log in with Hugging Face to train and keep identities of your own)"
        problems = self.catalog_for(session).problems()
        if problems:
            text += "; unreadable: " + "; ".join(f"{p.folder.name} ({p.message})" for p in problems[:3])
        return text

    def identity_details(self, session: Session, name: str | None) -> tuple[str | None, str]:
        """(reference crop path, markdown) of the identity ``name``; (None, "") for no name."""
        if not name:
            return None, ""
        entry = self.catalog_for(session).find(name)
        meta = entry.identity.metadata
        facts = [f"**{entry.name}**", entry.identity.pronouns or "no pronouns",
                 "shipped example (read-only)" if entry.read_only else "your library"]
        if meta.get("steps"):
            facts.append(f"{meta['steps']} steps")
        if meta.get("preset"):
            facts.append(f"preset {meta['preset']}")
        if meta.get("created"):
            facts.append(meta["created"][:10])
        text = " · ".join(facts)  # training notes (meta["warnings"]) are for the log only
        path = entry.identity.face_path
        return (str(path) if path else None), text

    def _pronouns(self, session: Session, name: str) -> str:
        try:
            return self.catalog_for(session).get(name).pronouns
        except LibraryError:
            embedded = _find_name(session.embedded, name)
            return embedded.pronouns if embedded is not None else ""

    def cast_characters(self, session: Session) -> list[tuple[str, str]]:
        """(full name, pronouns) of the cast, for the story parser."""
        return [(name, self._pronouns(session, name)) for name in session.cast]

    def cast_text(self, session: Session) -> str:
        """The cast as one markdown line."""
        if not session.cast:
            return "The cast is empty: pick identities in the library and press **Add to cast**."
        parts = [f"{name} ({p})" if p else name for name, p in self.cast_characters(session)]
        return "**Cast:** " + ", ".join(parts)

    def cast_gallery(self, session: Session) -> list[tuple[str, str]]:
        """(thumbnail, caption) of each cast member."""
        items = []
        for name, pronouns in self.cast_characters(session):
            try:
                face = self.catalog_for(session).get(name).face_path
            except LibraryError:
                face = None
            items.append((str(face or self.placeholder_face()), f"{name} ({pronouns})" if pronouns else name))
        return items

    def add_to_cast(self, session: Session, name: str | None) -> str:
        """Add the identity ``name`` to the cast; returns its canonical name."""
        if not name or not str(name).strip():
            raise StudioError("choose an identity in the library first (click its picture)")
        identity = self.catalog_for(session).get(str(name))
        from pipelines.binding import BindingError

        try:
            self.generator().binder.check_identity(identity)
        except BindingError as exc:
            raise StudioError(f"{exc}; it cannot be used with the '{self.config.name}' preset") from None
        if any(name_key(n) == name_key(identity.name) for n in session.cast):
            raise StudioError(f"{identity.name} is already in the cast")
        from llm.characters import MAX_CHARACTERS

        if len(session.cast) >= MAX_CHARACTERS:
            raise StudioError(f"the cast is full ({MAX_CHARACTERS} characters)")
        session.cast.append(identity.name)
        return identity.name

    def remove_from_cast(self, session: Session, name: str | None) -> str:
        """Remove ``name`` from the cast; returns the removed name."""
        if not name:
            raise StudioError("choose the cast member to remove")
        for existing in session.cast:
            if name_key(existing) == name_key(str(name)):
                session.cast.remove(existing)
                return existing
        raise StudioError(f"{show(str(name))} is not in the cast")

    def request_delete(self, session: Session, name: str | None) -> str:
        """First step of deleting an identity: remember it and return the question to confirm."""
        if not name:
            raise StudioError("choose the identity to delete in the library first")
        entry = self.catalog_for(session).find(str(name))
        if entry.read_only:
            raise StudioError(f"{entry.name} is a shipped example and cannot be deleted")
        session.pending_delete = entry.name
        return (f"Delete **{entry.name}** from the library for good? Its learned vectors and face "
                "crop are removed; comics already drawn are not affected.")

    def confirm_delete(self, session: Session) -> str:
        """Second step: delete the remembered identity (and drop it from the cast)."""
        name = session.pending_delete
        session.pending_delete = None
        if not name:
            raise StudioError("nothing to delete: choose an identity and press Delete first")
        self.catalog_for(session).delete(name)
        session.cast = [n for n in session.cast if name_key(n) != name_key(name)]
        return name

    def cancel_delete(self, session: Session) -> None:
        session.pending_delete = None

    # ------------------------------------------------------------------ story

    def parse(self, session: Session, story: str | None) -> ParseOutcome:
        """Parse the story for the cast (Gemini with a key, else offline) into table rows.

        People the story names outside the cast are given to the parser too (so "she" after
        "Marie Curie" is read as Marie Curie, not as the only woman of the cast); their panels
        keep them in the Characters column, where Generate refuses them until they are cast.
        """
        text = story or ""
        if not text.strip():
            raise StudioError("the story is empty; write a few sentences that name the characters")
        self.safety.check(text, "story")
        if not session.cast:
            raise StudioError("the cast is empty: add the story's characters on the Characters step "
                              "first")
        from llm.characters import MAX_CHARACTERS
        from llm.people import find_outsiders

        outsiders = find_outsiders(text, session.cast, self.library_names(session))
        extra = [(name, self._pronouns(session, name)) for name in outsiders.known]
        extra += [(name, "") for name in outsiders.unknown]
        characters = self.cast_characters(session) + extra[:max(0, MAX_CHARACTERS - len(session.cast))]
        result = parse_story(text, characters, config=self.config.llm)
        if not result.panels:
            raise StudioError("the parser found no panels in the story")
        session.story = text
        outside = {name_key(n) for n in outsiders.all}
        warnings = tuple(w for w in result.warnings
                         if not any(w.startswith(n + " ") for n in outsiders.all))
        info = _parse_report(result, outsiders, warnings, outside)
        return ParseOutcome(rows=rows_from_panels(result.panels), info=info, warnings=warnings,
                            addable=outsiders.known)

    # ------------------------------------------------------------------ the request

    def settings_from(self, style: str | None, keywords: Sequence[str] | None, negative: str | None,
                      seed: Any, randomize: bool, steps: Any, guidance: Any, width: Any,
                      height: Any, candidates: Any, title: str | None,
                      face_pass: bool | None = None) -> StyleSettings:
        """The Style and settings step's inputs as :class:`StyleSettings`, checked against
        ``configs/limits.yaml`` (finite numbers, steps, sizes for this preset, guidance);
        ``face_pass`` None -> the preset's ``generation.face_pass``."""
        from configs import load_limits
        from pipelines.request_limits import check_guidance, check_size

        limits = load_limits()

        def number(value: Any, label: str) -> float:
            try:
                result = float(value)
            except (TypeError, ValueError, OverflowError):
                raise StudioError(f"{label} must be a number") from None
            if not math.isfinite(result):
                raise StudioError(f"{label} must be a finite number, got {result}")
            return result

        def whole(value: Any, label: str, low: int, high: int, key: str) -> int:
            result = number(value, label)
            if not result.is_integer() or result < low:
                raise StudioError(f"{label} must be a whole number between {low} and {high}, "
                                  f"got {value}")
            if result > high:
                raise StudioError(limits.refusal(f"{label} {int(result)}", key, high))
            return int(result)

        def size(value: Any, label: str) -> int:
            return check_size(label, whole(value, label, 1, 2**62, "max_side"), limits,
                              self.config.name)

        return StyleSettings(
            style=style or self.styles.default_style, keywords=tuple(keywords or ()),
            negative_prompt=negative or "",
            seed=whole(seed if seed not in (None, "") else 0, "the seed", 0, MAX_UI_SEED, "seed"),
            randomize=bool(randomize), steps=whole(steps, "steps", 1, limits.steps, "steps"),
            guidance=check_guidance(number(guidance, "guidance"), limits),
            width=size(width, "the width"), height=size(height, "the height"),
            candidates=whole(candidates, "candidates per panel", 1, limits.candidates, "candidates"),
            title=(title or "").strip(),
            face_pass=self.config.generation.face_pass if face_pass is None else bool(face_pass))

    def build_request(self, session: Session, rows: Any, settings: StyleSettings) -> ComicRequest:
        """The comic to draw from the panel table and the settings, fully checked.

        Raises (one line each): empty panel list, refused terms, too many identities in a panel,
        a character not in the cast, bad style or settings.
        """
        panels = panels_from_rows(rows)
        if not panels:
            raise StudioError("the panel list is empty: press Process Text on the Story step or add "
                              "rows to the table")
        fixed = [self._checked_panel(session, panel, number)
                 for number, panel in enumerate(panels, start=1)]
        self.safety.check(settings.title, "title")
        request = ComicRequest(panels=tuple(fixed), style=settings.style,
                               keywords=tuple(self.styles.keyword_list(settings.keywords)),
                               negative_prompt=settings.negative_prompt, seed=settings.seed,
                               steps=settings.steps, guidance_scale=settings.guidance,
                               width=settings.width, height=settings.height,
                               candidates=settings.candidates, face_pass=settings.face_pass)
        return self.generator().check_request(request)

    def _checked_panel(self, session: Session, panel: PanelSpec, number: int) -> PanelSpec:
        """``panel`` with its names spelled as in the cast; refused terms, too many identities and
        characters outside the cast raise."""
        self.safety.check(panel.text, f"text of panel {number}")
        limit = self.config.generation.max_identities_per_panel
        if len(panel.characters) > limit:
            raise StudioError(f"panel {number} has {len(panel.characters)} identities "
                              f"({', '.join(panel.characters)}); the '{self.config.name}' preset "
                              f"draws at most {limit} per panel")
        cast_keys = {name_key(n): n for n in session.cast}
        names = []
        for name in panel.characters:
            if name_key(name) not in cast_keys:
                known = ", ".join(session.cast) or "the cast is empty"
                raise UnknownCharacter(f"panel {number}: '{name}' is not in the cast ({known}); "
                                       "add the character on the Characters step or fix the name")
            names.append(cast_keys[name_key(name)])
        from llm.people import find_outsiders

        named = find_outsiders(panel.text, session.cast, self.library_names(session)).known
        if named:
            raise UnknownCharacter(f"panel {number} names {' and '.join(named)}, who "
                                   f"{'is' if len(named) == 1 else 'are'} not in the cast; add "
                                   "them on the Characters step or change the sentence")
        return replace(panel, characters=tuple(names))

    def identities_for(self, session: Session, names: Sequence[str]) -> dict[str, Any]:
        """name -> identity for ``names``: the library first, then an opened project's zip."""
        found: dict[str, Any] = {}
        for name in names:
            try:
                found[name] = self.catalog_for(session).get(name)
            except LibraryError as exc:
                embedded = _find_name(session.embedded, name)
                if embedded is None:
                    raise UnknownCharacter(f"character '{name}': {exc}") from None
                found[name] = embedded
        return found

    # ------------------------------------------------------------------ drawing

    def _reference(self, identity: Any) -> np.ndarray | None:
        """The face-recognition embedding of an identity's library crop (cached), or None."""
        path = getattr(identity, "face_path", None)
        similarity = self.similarity()
        if path is None or similarity is None:
            return None
        key = (str(path), path.stat().st_mtime)
        with self._lock:
            if key in self._references:
                return self._references[key]
        try:
            with Image.open(path) as image:
                vector = similarity.reference(np.asarray(image.convert("RGB")))
        except Exception:  # noqa: BLE001 - a reference without a face just gets no score
            vector = None
        with self._lock:
            self._references[key] = vector
        return vector

    def _matcher(self, identities: Mapping[str, Any], names: Sequence[str]) -> Any:
        """The face pass's :class:`~pipelines.face_pass.IdentityMatcher` for a panel's
        characters (cached references), or None (faces then matched by place)."""
        from pipelines.face_pass import IdentityMatcher

        similarity = self.similarity()
        if similarity is None or not names:
            return None
        references = {name: self._reference(identities[name]) for name in names}
        if any(v is None for v in references.values()):
            return None
        return IdentityMatcher(similarity, references)

    def _score(self, results: list["PanelResult"], identities: Mapping[str, Any]
               ) -> list["PanelScore | None"]:
        similarity = self.similarity()
        if similarity is None or not results or not results[0].characters:
            return [None] * len(results)
        references = {}
        for name in results[0].characters:
            vector = self._reference(identities[name])
            if vector is not None:
                references[name] = vector
        if not references:
            return [None] * len(results)
        return list(similarity.score_candidates([r.image for r in results], references))

    def _caption(self, index: int, panel: DrawnPanel) -> str:
        text = f"{index + 1}. {panel.text}"
        lines = [text, self._badge(panel, panel.chosen), panel.faces_caption]
        return "\n".join(line for line in lines if line)

    def _badge(self, panel: DrawnPanel, candidate: int) -> str:
        result = panel.results[candidate]
        if not result.characters:
            return ""
        score = panel.scores[candidate]
        if score is None:
            reason = "unavailable" if self.similarity() is None else "no reference face"
            return f"face similarity {reason}"
        return score.badge()

    def _drawn(self, text: str, results: list["PanelResult"], identities: Mapping[str, Any],
               choice: int | None) -> DrawnPanel:
        from stableidentity.similarity import pick_best

        scores = self._score(results, identities)
        if choice is not None and 0 <= choice < len(results):
            chosen = choice
        elif all(s is not None for s in scores) and len(results) > 1:
            chosen = pick_best(scores)  # type: ignore[arg-type]
        else:
            chosen = 0
        return DrawnPanel(text=text, results=results, scores=scores, chosen=chosen)

    def generate(self, session: Session, rows: Any, settings: StyleSettings) -> Iterator[ComicUpdate]:
        """Draw the comic panel by panel, yielding after each; the last update has pages and files.

        With ``settings.randomize`` a fresh seed is drawn (and reported in every update).
        Everything is checked before the first panel is drawn.
        """
        if settings.randomize:
            settings = replace(settings, seed=secrets.randbelow(MAX_UI_SEED + 1))
        request = self.build_request(session, rows, settings)
        identities = self.identities_for(session, request.cast_names())
        generator = self.generator()
        resolved, prepared = generator.prepare(request, identities)
        warnings = tuple(f"panel {p.index + 1}: '{name}' is listed but not named in the text, so "
                         "that identity will not appear" for p in prepared for name in p.unnamed)
        restored = session.restored
        choices = restored.choices if restored is not None and \
            _same_request(restored.request, resolved, self.config) else None
        total = len(prepared)
        drawn: list[DrawnPanel] = []
        session.drawing = Comic(request=resolved, title=settings.title, panels=drawn)
        try:
            yield ComicUpdate(gallery=[], status=f"Drawing panel 1 of {total} …",
                              seed=settings.seed, warnings=warnings)
            for panel in prepared:
                results = generator.draw(resolved, panel, self._matcher(identities, panel.characters))
                choice = choices[panel.index] if choices is not None and \
                    panel.index < len(choices) else None
                drawn.append(self._drawn(resolved.panels[panel.index].text, results, identities,
                                         choice))
                if len(drawn) < total:
                    gallery = [(p.image, self._caption(i, p)) for i, p in enumerate(drawn)]
                    yield ComicUpdate(gallery=gallery, seed=settings.seed,
                                      notes=self._notes(drawn, resolved),
                                      status=f"Drew panel {len(drawn)} of {total}; drawing panel "
                                             f"{len(drawn) + 1} …")
            comic = Comic(request=resolved, title=settings.title, panels=drawn)
            session.saved_id = ""  # a new comic: a new entry in My comics
            self._finish(session, identities, comic)
            session.comic = comic  # the previous comic stays until this one is complete
        finally:
            session.drawing = None
        yield ComicUpdate(gallery=self.panel_gallery(session), seed=settings.seed, done=True,
                          notes=self.panel_notes(session),
                          status=self._done_status(comic), pages=comic.page_files, files=comic.files)

    def _done_status(self, comic: Comic) -> str:
        n = len(comic.panels)
        candidates = comic.request.candidates or 1
        best = f", best of {candidates} per panel by face similarity" if candidates > 1 else ""
        return (f"Done: {n} panel{'s' if n != 1 else ''} on {len(comic.pages)} "
                f"page{'s' if len(comic.pages) != 1 else ''}{best}. Downloads are below.")

    def _finish(self, session: Session, identities: Mapping[str, Any],
                comic: Comic | None = None, keep: bool = True) -> None:
        """Lay out the pages and export every file for ``comic`` (default: the session's); with
        ``keep``, save it in the owner's My comics."""
        from pipelines.export import export_comic
        from pipelines.layout import render_pages

        comic = comic or session.comic
        assert comic is not None
        images = [p.image for p in comic.panels]
        detector = self.components().face_detector
        faces = [panel.chosen_faces(detector) for panel in comic.panels]
        comic.pages = render_pages(images, [p.text for p in comic.request.panels], comic.title, faces)
        project = Project.from_request(comic.request, self.config, title=comic.title,
                                       choices=[p.chosen for p in comic.panels],
                                       story=session.story, cast=session.cast)
        candidates = {(i, r.candidate): r.image for i, p in enumerate(comic.panels) for r in p.results}
        folder = self.session_folder(session)
        shutil.rmtree(folder, ignore_errors=True)
        written = export_comic(folder, project, images, comic.pages, candidates=candidates,
                              identities=identities)
        comic.files = [str(p) for p in [*written.pages, written.pdf, written.zip, written.project]]
        comic.page_files = [str(p) for p in written.pages]
        if keep:
            self._keep(session, comic)

    # ------------------------------------------------------------------ my comics

    def _keep(self, session: Session, comic: Comic) -> None:
        """Save the session's comic in its owner's My comics: a new entry after Generate, the
        same entry after a redraw or a candidate swap. A failure is logged, never fatal (the
        downloads are there); nobody signed in (a Space without login) keeps nothing."""
        owner = self.owner_of(session)
        if owner is None:
            return
        try:
            try:
                saved = self.shelf.save(owner, comic.title, comic.files,
                                        comic_id=session.saved_id or None)
            except ComicNotFound:  # deleted meanwhile: keep it as a new one
                saved = self.shelf.save(owner, comic.title, comic.files)
        except LibraryError as exc:
            logger.warning("could not save the comic in My comics: %s", exc)
            return
        session.saved_id = saved.id

    def my_comics(self, session: Session) -> list[SavedComic]:
        """The session owner's saved comics, newest first (none without an owner)."""
        owner = self.owner_of(session)
        return self.shelf.list(owner) if owner is not None else []

    def open_saved(self, session: Session, comic_id: Any) -> tuple[RestoredProject, list[str]]:
        """Reopen one of the owner's saved comics: its project (panels, cast, settings, the
        identities inside its zip) goes into the session, its files into the session's download
        folder. Returns the restored project and the download paths (pages first)."""
        owner = self.owner_of(session)
        if owner is None:
            raise ComicNotFound("log in with Hugging Face to keep and open comics of your own")
        saved = self.shelf.get(owner, comic_id)
        folder = self.session_folder(session)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        files = []
        for source in saved.files:
            shutil.copyfile(source, folder / source.name)
            files.append(str(folder / source.name))
        restored = self.open_project(session, str(folder / saved.zip.name))
        session.saved_id = saved.id
        title = saved.title or "Untitled comic"
        info = restored.info.replace(f"Opened **{saved.zip.name}**", f"Opened **{title}**", 1)
        return replace(restored, info=info), files

    def delete_saved(self, session: Session, comic_id: Any) -> str:
        """Delete one of the owner's saved comics; returns its title."""
        owner = self.owner_of(session)
        if owner is None:
            raise ComicNotFound("that comic is not among your saved comics")
        saved = self.shelf.get(owner, comic_id)
        self.shelf.delete(owner, saved.id)
        if session.saved_id == saved.id:
            session.saved_id = ""
        return saved.title or "Untitled comic"

    def session_folder(self, session: Session) -> Path:
        """The session's download folder (its id is assigned here on first use)."""
        if not session.id:
            session.id = uuid.uuid4().hex[:12]
        return self.export_root / session.id

    def forget(self, session: Session) -> None:
        """Remove a finished session's downloads (``gr.State``'s delete callback)."""
        if isinstance(session, Session) and session.id:
            shutil.rmtree(self.export_root / session.id, ignore_errors=True)

    def _comic(self, session: Session) -> Comic:
        if session.comic is None:
            raise StudioError("there is no comic yet: press Generate first")
        return session.comic

    def _panel_index(self, comic: Comic, number: Any) -> int:
        return _zero_based(number, len(comic.panels), "panel", "the comic has panels")

    def _notes(self, panels: Sequence[DrawnPanel], request: ComicRequest) -> str:
        """Markdown table; the seed is the panel's (as in the Story table), plus the candidate."""
        if not panels:
            return ""
        lines = ["| Panel | Sentence | Face similarity | Seed |", "|---|---|---|---|"]
        for i, panel in enumerate(panels):
            badge = self._badge(panel, panel.chosen) or "no characters"
            text = panel.text.replace("|", "\\|")
            lines.append(f"| {i + 1} | {text} | {badge} | {self._seed_text(panel, request, i)} |")
        return "\n".join(lines)

    @staticmethod
    def _seed_text(panel: DrawnPanel, request: ComicRequest, index: int) -> str:
        """'1234' or '1234, candidate 2 of 3': the panel seed the Story table holds."""
        seed = request.panel_seed(index)
        if len(panel.results) > 1:
            return f"{seed}, candidate {panel.chosen + 1} of {len(panel.results)}"
        return str(seed)

    def panel_notes(self, session: Session) -> str:
        """A markdown table of the panels: sentence, face-similarity badge, seed and candidate."""
        comic = session.comic
        return self._notes(comic.panels, comic.request) if comic is not None else ""

    def cards(self, session: Session) -> list[PanelCard]:
        """One card per panel of the comic being drawn (while Generate runs) or of the comic."""
        comic = session.drawing or session.comic
        if comic is None:
            return []
        out = []
        for i, panel in enumerate(comic.panels):
            badge = self._badge(panel, panel.chosen) or "no characters"
            text = (f"**{i + 1}.** {panel.text}\n\n{badge} · seed "
                    f"{self._seed_text(panel, comic.request, i)}")
            if panel.faces_caption:  # which face is whose, as the face pass matched them
                text += f"\n\n{panel.faces_caption}"
            strip = [(r.image, f"{c + 1}{' ✓' if c == panel.chosen else ''}"
                      + (f" · {self._badge(panel, c)}" if self._badge(panel, c) else ""))
                     for c, r in enumerate(panel.results)] if len(panel.results) > 1 else []
            out.append(PanelCard(image=panel.image, text=text, candidates=strip))
        return out

    def panel_gallery(self, session: Session) -> list[tuple[Image.Image, str]]:
        """(chosen image, caption with the face-similarity badge) of every panel."""
        if session.comic is None:
            return []
        return [(p.image, self._caption(i, p)) for i, p in enumerate(session.comic.panels)]

    def candidates(self, session: Session, number: Any) -> list[tuple[Image.Image, str]]:
        """Every candidate of panel ``number`` (1-based) with its badge; the chosen one marked."""
        comic = self._comic(session)
        panel = comic.panels[self._panel_index(comic, number)]
        items = []
        for c, result in enumerate(panel.results):
            badge = self._badge(panel, c)
            mark = " (in the comic)" if c == panel.chosen else ""
            items.append((result.image, f"candidate {c + 1}{mark}" + (f"\n{badge}" if badge else "")))
        return items

    def choose(self, session: Session, number: Any, candidate: Any) -> None:
        """Put candidate ``candidate`` (1-based) of panel ``number`` into the comic."""
        comic = self._comic(session)
        index = self._panel_index(comic, number)
        panel = comic.panels[index]
        panel.chosen = _zero_based(candidate, len(panel.results), "candidate",
                                   f"panel {index + 1} has candidates")
        self._finish(session, self.identities_for(session, comic.request.cast_names()))

    def redraw(self, session: Session, rows: Any, number: Any, seed: Any) -> tuple[list[Row], int]:
        """Draw panel ``number`` again with ``seed`` (blank: a random one).

        The panel's text and characters come from the table's row of that number when the table
        still has one row per panel (so an edited sentence is drawn); the other settings are the
        comic's. Returns the table with the row's seed filled in, and the seed used.
        """
        comic = self._comic(session)
        index = self._panel_index(comic, number)
        if seed in (None, ""):
            new_seed = secrets.randbelow(MAX_UI_SEED + 1)
        else:
            try:
                new_seed = int(float(seed))
            except (TypeError, ValueError):
                raise StudioError("the new seed must be a whole number (or blank for a random one)") from None
            if not 0 <= new_seed <= MAX_UI_SEED or float(seed) != new_seed:
                raise StudioError(f"the new seed must be a whole number from 0 to {MAX_UI_SEED}")
        table = normalise_rows(rows)
        panel = comic.request.panels[index]
        edited = [r for r in table if any(r)]
        if len(edited) == len(comic.panels):
            fresh = panels_from_rows([edited[index][:2] + [""]])[0]
            fresh = self._checked_panel(session, fresh, index + 1)
            panel = replace(panel, text=fresh.text, characters=fresh.characters)
        panel = replace(panel, seed=new_seed)
        request = replace(comic.request, panels=tuple(
            panel if i == index else p for i, p in enumerate(comic.request.panels)))
        identities = self.identities_for(session, request.cast_names())
        results = self.generator().redraw(request, index, new_seed, identities,
                                          self._matcher(identities, request.panels[index].characters))
        comic.request = request
        comic.panels[index] = self._drawn(panel.text, results, identities, None)
        self._finish(session, identities)
        rows_out = table
        if len(edited) == len(comic.panels):
            position = [i for i, r in enumerate(table) if any(r)][index]
            rows_out = set_seed(table, position + 1, new_seed)
        return rows_out, new_seed

    # ------------------------------------------------------------------ projects

    def open_project(self, session: Session, path: str | None) -> RestoredProject:
        """Restore panels, cast and settings from a project zip or ``project.json``."""
        if not path:
            raise StudioError("choose a project file first (comic.zip or project.json)")
        shown = Path(path).name
        if Path(path).suffix.lower() not in (".zip", ".json"):
            raise ProjectError(f"'{shown}' is not a project file; open the comic.zip or project.json "
                               "saved by the Generate step")
        try:
            project = load_project(path)
        except ProjectError as exc:
            raise ProjectError(str(exc).replace(str(path), shown)) from None
        request = project.request
        session.embedded = dict(project.identities)
        session.restored = project
        session.comic = None
        session.story = project.story
        cast: list[str] = []
        warnings: list[str] = []
        for name in project.cast:
            catalog = self.catalog_for(session)
            if name in catalog:
                cast.append(catalog.get(name).name)
            elif _find_name(session.embedded, name) is not None:
                cast.append(_find_name(session.embedded, name).name)  # type: ignore[union-attr]
            else:
                cast.append(name)
                warnings.append(f"'{name}' is neither in the library nor in the project file; "
                                "train that identity before generating")
        session.cast = cast
        if project.preset and project.preset != self.config.name:
            warnings.append(f"the project was drawn with the '{project.preset}' preset and this app "
                            f"runs '{self.config.name}': the pictures will differ")
        gen = self.config.generation
        settings = StyleSettings(
            style=request.style, keywords=tuple(request.keywords),
            negative_prompt=request.negative_prompt if request.negative_prompt is not None
            else gen.negative_prompt,
            seed=request.seed, randomize=False,
            steps=request.steps or gen.steps, guidance=request.guidance_scale or gen.guidance_scale,
            width=request.width or gen.width, height=request.height or gen.height,
            candidates=request.candidates or gen.candidates, title=project.title,
            face_pass=gen.face_pass if request.face_pass is None else request.face_pass)
        embedded = f", {len(project.identities)} identities inside" if project.identities else ""
        session.comic = self._saved_comic(session, project, path)
        shown_now = ("its pages and panels are shown below; **Generate** draws it again"
                     if session.comic is not None else "press **Generate** to draw it again")
        info = f"Opened **{shown}**: {len(request.panels)} panels{embedded}; {shown_now}."
        return RestoredProject(rows=rows_from_panels(request.panels), settings=settings, cast=cast,
                               info=info, warnings=tuple(warnings), story=project.story)

    def _saved_comic(self, session: Session, project: Project, path: str) -> Comic | None:
        """The comic a project zip carries (every panel's candidates and the pages), or None
        when the file holds no complete set of pictures."""
        from pipelines.export import read_saved_images
        from pipelines.generation import PanelResult, candidate_seed

        request = project.request
        choices = list(project.choices or (0,) * len(request.panels))
        saved = read_saved_images(path, choices)
        try:
            identities = self.identities_for(session, request.cast_names())
        except LibraryError:
            identities = None
        panels = []
        for i, spec in enumerate(request.panels):
            count = sum(1 for (j, _) in saved.panels if j == i)
            if count == 0 or any((i, c) not in saved.panels for c in range(count)) \
                    or choices[i] >= count:
                return None
            results = [PanelResult(index=i, candidate=c, image=saved.panels[(i, c)], prompt=spec.text,
                                   bound_prompt="", negative_prompt=request.negative_prompt or "",
                                   seed=candidate_seed(request.panel_seed(i), c),
                                   characters=tuple(spec.characters)) for c in range(count)]
            scores = self._score(results, identities) if identities is not None \
                else [None] * count
            panels.append(DrawnPanel(text=spec.text, results=results, scores=scores,
                                     chosen=choices[i]))
        comic = Comic(request=request, title=project.title, panels=panels, pages=saved.pages)
        try:
            self._finish(session, identities or {}, comic, keep=False)  # opened, not new
        except (ModelsUnavailable, OSError):
            comic.files = [str(path)]
        return comic


# ----------------------------------------------------------------------------- helpers


def _parse_report(result: Any, outsiders: Any, warnings: Sequence[str], outside: set[str]) -> str:
    """The Story step's markdown after Process Text: panels, parser, people outside the cast,
    unresolved pronouns, empty panels, other warnings."""
    n = len(result.panels)
    lines = [f"**{n} panel{'s' if n != 1 else ''}**, {result.describe()}."]
    if outsiders.known:
        lines.append(f"**Not in the cast:** {', '.join(outsiders.known)} (in your library: press "
                     "**Add to the cast** below).")
    if outsiders.unknown:
        lines.append(f"**Named but not in the cast or the library:** {', '.join(outsiders.unknown)}. "
                     "If they are people, train them on **1 · Characters**; otherwise remove them "
                     "from the panels' Characters column.")
    if outsiders.all:
        numbers = [str(i + 1) for i, p in enumerate(result.panels)
                   if any(name_key(c) in outside for c in p.characters)]
        if numbers:
            lines.append(f"Panels {', '.join(numbers)} cannot be drawn until everyone in them is in "
                         "the cast.")
    unresolved = [w for w in warnings if "could not tell who" in w]
    if unresolved:
        lines.append("**Pronouns not resolved:** " + "; ".join(unresolved) + ".")
    empty = [str(i + 1) for i, p in enumerate(result.panels) if not p.characters]
    if empty:
        lines.append(f"**Nobody in panel{'s' if len(empty) > 1 else ''} {', '.join(empty)}:** "
                     "drawn without a character; add names in the Characters column if someone "
                     "should be there.")
    others = [w for w in warnings if w not in unresolved]
    if others:
        lines.append("\n".join(f"* {w}" for w in others))
    return "\n\n".join(lines)


def _find_name(mapping: Mapping[str, Any], name: str) -> Any:
    key = name_key(name)
    for stored, value in mapping.items():
        if name_key(stored) == key:
            return value
    return None


def _same_request(saved: ComicRequest, resolved: ComicRequest, config: "AppConfig") -> bool:
    """Whether ``resolved`` draws exactly what the opened project ``saved`` drew."""
    a = saved.resolved(config)
    a = replace(a, panels=tuple(replace(p, seed=a.panel_seed(i)) for i, p in enumerate(a.panels)),
                guidance_scale=float(a.guidance_scale or 0))
    b = replace(resolved, panels=tuple(replace(p, seed=resolved.panel_seed(i))
                                       for i, p in enumerate(resolved.panels)),
                guidance_scale=float(resolved.guidance_scale or 0))
    return replace(a, seed=0) == replace(b, seed=0)


__all__ = ["Comic", "ComicUpdate", "DrawnPanel", "ModelsUnavailable", "ParseOutcome",
           "RestoredProject", "Session", "StyleSettings", "Studio", "StudioError", "user_message"]


def _zero_based(number: Any, count: int, what: str, range_text: str) -> int:
    """A 1-based number typed by the user -> a 0-based index below ``count`` (StudioError if not)."""
    try:
        value = float(number)
    except (TypeError, ValueError):
        raise StudioError(f"give a {what} number from 1 to {count}") from None
    if value != int(value) or not 1 <= value <= count:
        raise StudioError(f"{what} {number} does not exist; {range_text} 1 to {count}")
    return int(value) - 1
