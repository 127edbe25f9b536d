"""The process-wide services behind the web app, and the steps they serve.

:class:`Studio` is created once in ``app.py``'s ``main()`` and closed over by the handlers: the
loaded models (``load_components``' per-process cache), the workspace (each owner's identity
library + read-only examples, :mod:`identities.owners`), the SQLite store of jobs and saved
comics, the training service and its queue (one training at a time per GPU), the panel
generator, face similarity, the style book, the safety filter and a folder for downloads. It
holds no per-user data: that is :class:`~session.state.Session`.

Each step's operations live in their own module and are mixed in: :mod:`session.cast`,
:mod:`session.story`, :mod:`session.request`, :mod:`session.drawing`, :mod:`session.cards`,
:mod:`session.saved`. Every operation takes the session explicitly and raises a ``ValueError``
subclass with a one-line message for anything the user can fix; :func:`session.errors.user_message`
turns any exception into the text the app shows (never a traceback).
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from identities.catalog import EXAMPLES_DIR, IdentityCatalog
from identities.owners import LOCAL, Owner, Workspace, resolve_owner
from pipelines.safety import SafetyFilter
from pipelines.styles import StyleBook, load_style_book
from serving.jobs import TrainingQueue
from serving.saved_comics import ComicShelf
from serving.store import DB_FILE, Store
from serving.training_service import TrainingService
from serving.visitor_files import VisitorFiles
from serving.zero_gpu import ZeroGPUTraining, on_zero_gpu
from session.errors import ModelsUnavailable
from session.state import Session, StyleSettings

if TYPE_CHECKING:  # pragma: no cover
    from configs import AppConfig
    from faces.similarity import FaceSimilarity
    from models.loading import Components
    from pipelines.generation import PanelGenerator

logger = logging.getLogger(__name__)
from session.cards import CardViews
from session.cast import CastSteps
from session.drawing import DrawingSteps
from session.request import RequestSteps
from session.saved import SavedComicSteps
from session.story import StorySteps


def _load_models(config: "AppConfig") -> "tuple[Components | None, str | None]":
    """Load the models once per process and build (and, with ``runtime.compile``, warm) the
    panel generator: ``(components, None)``, or ``(None, one-line message)`` (also printed)."""
    from models.compilation import warm_compiled
    from models.loading import load_components
    from pipelines.generation import panel_generator

    try:
        components = load_components(config)
        generator = panel_generator(components)  # built once per process, before any click
        if generator.compiles:  # runtime.compile resolved for the device (auto: CUDA only)
            warm_compiled(generator.warm_up)  # compile now (or load the kept code), not on the first Generate
    except Exception as exc:  # noqa: BLE001 - the page must still come up
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: the models could not be loaded: {message}", file=sys.stderr, flush=True)
        logger.debug("model loading failed", exc_info=exc)
        return None, message
    return components, None



class Studio(CastSteps, StorySteps, RequestSteps, DrawingSteps, CardViews, SavedComicSteps):
    """Process-wide services for the app (see the module docstring).

    Args:
        config: the preset.
        components: the loaded models, or None with ``load_error`` saying why they are missing.
        loading: the models are being loaded (:meth:`create_in_background`); until then
            model-backed operations raise :class:`ModelsUnavailable` saying so.
        examples_dir: read-only shipped identities (``embeddings/examples``).
        export_root: where each session's downloads are written (default: a new temp folder).
        queue: the training queue (default: a new one).
        multi_user: a private library per owner (see :mod:`identities.owners`).
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
        #: multi-user: which visit may fetch which served file (serving/visitor_files.py)
        self.visitor_files = VisitorFiles(self.store.secrets.get("visits")) if multi_user else None
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
                from faces.similarity import FaceSimilarity

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


    def session_folder(self, session: Session) -> Path:
        """The session's download folder (its id is assigned here on first use)."""
        if not session.id:
            session.id = uuid.uuid4().hex[:12]
        return self.export_root / session.id

    def forget(self, session: Session) -> None:
        """Remove a finished session's downloads (``gr.State``'s delete callback)."""
        if isinstance(session, Session) and session.id:
            shutil.rmtree(self.export_root / session.id, ignore_errors=True)


__all__ = ['Studio']
