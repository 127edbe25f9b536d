"""Training identities in the background for the app: check the input, queue the job, report.

:class:`TrainingService` sits between the web app and the :class:`~serving.jobs.TrainingQueue`:

* :meth:`TrainingService.check` validates everything a user can get wrong (consent, name, pronouns,
  steps, a readable photo with a face) *before* anything is queued, raising one-line errors
  (:class:`TrainingInputError`, :class:`~identities.names.InvalidName`,
  :class:`~identities.library.IdentityExists`, :class:`~faces.face_prep.FacePrepError`);
* :meth:`TrainingService.submit` queues the training (one at a time per GPU; others wait and
  see their position) and saves the result into the library when it finishes;
* :meth:`TrainingService.views` returns the current snapshots of a browser's jobs, so a reloaded
  page finds them again by id; only the owner's jobs are ever returned.

The photo's bytes are read at submit time: the job does not depend on the upload staying on disk.
With a :class:`~serving.store.Store`, every job and each status change is recorded in
SQLite (the photo only until the job ends; an interrupted job keeps it until :meth:`retrain`), and :meth:`TrainingService.resume` (called once at
start-up) marks a job that was running when the server died as ``interrupted`` with a message
(or ``done`` when its identity reached the library just before) and queues the waiting ones again
under their old ids. Each job trains into its owner's library (:mod:`identities.owners`).
"""

from __future__ import annotations

import base64
import html
import io
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from configs import load_limits
from faces.face_prep import FacePrepError, load_photo
from faces.photo_check import check_photo
from faces.photos import FORMAT_TEXT, read_photo_bytes
from serving.jobs import JobProgress, JobView, TrainingQueue, WorkFunction
from identities.library import IdentityExists, IdentityLibrary, save_trained
from identities.names import LibraryError, name_key, parse_pronouns, show, validate_name
from identities.owners import LOCAL, Owner, Workspace, parse_owner
from serving.store import JobRecord, Store

if TYPE_CHECKING:  # pragma: no cover
    from models.loading import Components
    from faces.face_prep import AlignedFace

logger = logging.getLogger(__name__)

#: Most training steps a user may ask for (``configs/limits.yaml``: ``train_steps``).
MAX_TRAIN_STEPS = load_limits().train_steps
PRONOUNS_MESSAGE = ("choose the person's pronouns (he, she or they): the story parser needs them "
                    "to tell who 'he', 'she' or 'they' is")
#: Leading bytes of common picture formats the app cannot open, with their names (ISO media
#: brands such as HEIC sit at offset 4, after the box size).
UNSUPPORTED_SIGNATURES = ((4, b"ftypheic", "HEIC"), (4, b"ftypheix", "HEIC"),
                          (4, b"ftypmif1", "HEIF"), (4, b"ftypavif", "AVIF"),
                          (0, b"8BPS", "Photoshop (PSD)"), (0, b"%PDF", "PDF"),
                          (0, b"\x00\x00\x01\x00", "ICO"))
CONSENT_MESSAGE = ("tick \"I have the right to use this person's likeness\" before training: "
                   "an identity reproduces a real person's face")


class TrainingInputError(LibraryError):
    """A training request that cannot be queued (no photo, no consent, bad steps, busy name)."""


@dataclass(frozen=True)
class TrainingRequest:
    """A checked training request, ready to queue.

    Attributes:
        name: the validated full name; pronouns: "he", "she", "they" or "".
        photo: the uploaded file's bytes.
        steps: optimisation steps; seed: training seed (None: the preset's).
        warnings: notes from the face check (several faces, small face).
        owner: the :class:`~identities.owners.Owner` id whose library receives it (after a
            restart: the id as stored, :meth:`serving.store.Store.owner_ref`).
        folder: the owner's folder name (:attr:`~identities.owners.Owner.folder`); "" means
            the folder of ``owner``.
    """

    name: str
    pronouns: str
    photo: bytes
    steps: int
    seed: int | None = None
    warnings: tuple[str, ...] = ()
    owner: str = LOCAL.id
    folder: str = ""


class TrainingService:
    """Queues identity training and stores the results in the owner's library.

    Args:
        components: a callable returning the loaded models (raises if they failed to load), so
            the service can be built before the models are ready.
        workspace: where each owner's library is (single-user: one library).
        queue: the process's training queue (one job at a time).
        store: the database recording jobs across restarts; None keeps them in memory only.
    """

    def __init__(self, components: Callable[[], "Components"], workspace: Workspace,
                 queue: TrainingQueue, store: Store | None = None) -> None:
        self._components = components
        self.workspace = workspace
        self.queue = queue
        self.store = store
        self._lock = threading.Lock()
        # job id -> (owner id, name key) of every job submitted by this process
        self._jobs: dict[str, tuple[str, str]] = {}

    def default_steps(self) -> int:
        return self._components().config.train.steps

    # ------------------------------------------------------------------ checking

    def busy_names(self, owner: Owner = LOCAL) -> set[str]:
        """Name keys of the owner's jobs still queued or running."""
        with self._lock:
            items = [(job_id, key) for job_id, (who, key) in self._jobs.items()
                     if who == self._ref(owner.id)]
        busy = set()
        for job_id, key in items:
            view = self.queue.get(job_id)
            if view is not None and not view.finished:
                busy.add(key)
        return busy

    def check(self, photo: str | bytes | None, name: str | None, pronouns: str | None,
              consent: bool, steps: int | float | None = None,
              seed: int | float | None = None, *, owner: Owner | None = LOCAL,
              find_face: bool = True) -> TrainingRequest:
        """Validate a training request; nothing is queued.

        Args:
            photo: path of the uploaded photo (or its bytes).
            steps: None -> the preset's ``train.steps``.
            owner: whose library receives the identity (None: nobody signed in).
            find_face: run the face detector now (False on ZeroGPU, where model work belongs
                inside ``spaces.GPU``: training detects the face first and fails just as early).
        Raises:
            TrainingInputError, InvalidName, InvalidPronouns, IdentityExists, FacePrepError,
            NotSignedIn, InvalidOwner.
        """
        if not consent:
            raise TrainingInputError(CONSENT_MESSAGE)
        library = self.workspace.library(owner)
        assert owner is not None  # library() raised NotSignedIn otherwise
        if photo is None or (isinstance(photo, str) and not photo.strip()):
            raise TrainingInputError("upload a photo of the person's face first")
        clean_name = validate_name(name if name is not None else "")
        clean_pronouns = parse_pronouns(pronouns)
        if not clean_pronouns:
            raise TrainingInputError(PRONOUNS_MESSAGE)
        if steps is None or steps == "":
            total = self.default_steps()
        else:
            total = _whole_number(steps, "training steps")
            if not 1 <= total <= MAX_TRAIN_STEPS:
                raise TrainingInputError(f"training steps must be between 1 and {MAX_TRAIN_STEPS}, "
                                         f"got {total} {load_limits().tag('train_steps')}")
        if seed not in (None, ""):
            seed = _whole_number(seed, "the seed")
            if not 0 <= seed <= load_limits().seed:
                raise TrainingInputError(load_limits().refusal(f"the seed {seed}", "seed")
                                         if seed > 0 else "the seed must not be negative")
        if clean_name in library:
            raise IdentityExists(f"an identity named {show(clean_name)} already exists; choose "
                                 "another name or delete the old one from the library first")
        library.refuse_confusable(clean_name)
        if name_key(clean_name) in self.busy_names(owner):
            raise TrainingInputError(f"{show(clean_name)} is already being trained; wait for that "
                                     "job to finish")
        raw, aligned = self.check_photo(photo, find_face=find_face)
        return TrainingRequest(name=clean_name, pronouns=clean_pronouns, photo=raw,
                               steps=total, seed=None if seed in (None, "") else int(seed),
                               warnings=tuple(aligned.warnings) if aligned is not None else (),
                               owner=owner.id, folder=owner.folder)

    def check_photo(self, photo: str | bytes | None, *, find_face: bool = True
                    ) -> tuple[bytes, "AlignedFace | None"]:
        """Open an uploaded photo and find its one face: (the file's bytes, the aligned face;
        None when ``find_face`` is False).

        Raises:
            FacePrepError: one plain reason: no file, not an image, an unsupported format, too
                large (``configs/limits.yaml``), no face, several faces of similar size.
        """
        if photo is None or (isinstance(photo, str) and not photo.strip()):
            raise TrainingInputError("upload a photo of the person's face first")
        raw = read_photo_bytes(photo)
        kinds = [kind for offset, signature, kind in UNSUPPORTED_SIGNATURES
                 if raw[offset:offset + len(signature)] == signature]
        if b"<svg" in raw[:512].lower():
            kinds.append("SVG")
        if kinds:
            raise FacePrepError(f"{kinds[0]} images are not supported; upload {FORMAT_TEXT}")
        loaded = load_photo(raw)
        if not find_face:
            return raw, None
        components = self._components()
        aligned = check_photo(loaded, components.face_detector, components.config.face)
        return raw, aligned

    # ------------------------------------------------------------------ running

    def work(self, request: TrainingRequest, job_id: str | None = None) -> WorkFunction:
        """The job for ``request``: train, save the identity into the owner's library (with
        ``job_id`` in its metadata), return a message.

        The same function runs on the background queue (:meth:`submit`) and, on ZeroGPU, inside
        ``spaces.GPU`` (:class:`serving.zero_gpu.ZeroGPUTraining`).
        """
        from stableidentity.trainer import train_identity

        def work(report: Callable[[JobProgress], None], cancel: threading.Event) -> str:
            library = self._library(request.owner, request.folder)
            components = self._components()

            def progress(update) -> None:
                report(JobProgress(step=update.step, total=update.total, loss=update.loss,
                                   elapsed_s=update.elapsed_s, eta_s=update.eta_s))

            report(JobProgress(step=0, total=request.steps))
            trained = train_identity(components, request.photo, steps=request.steps,
                                     progress=progress, cancel=cancel, seed=request.seed)
            identity = save_trained(library, request.name, trained, pronouns=request.pronouns,
                                    config=components.config, job_id=job_id,
                                    encoders=components.fingerprint.text())
            if trained.warnings:  # internal notes (face parsing, masks) are for the log
                logger.info("training %s: %s", identity.name, "; ".join(trained.warnings))
            return f"saved {identity.name} to the library"

        return work

    def submit(self, request: TrainingRequest) -> JobView:
        """Queue ``request`` (recorded in the store first, with its photo); the job saves the
        identity into the owner's library when training ends."""
        job_id = uuid.uuid4().hex[:12]
        if self.store is not None:
            self.store.add_job(JobRecord(
                id=job_id, owner=request.owner, label=f"Training {request.name}",
                name=request.name, pronouns=request.pronouns, steps=request.steps,
                seed=request.seed, status="queued", total=request.steps, photo=request.photo,
                folder=request.folder))
        return self._enqueue(request, job_id)

    def _record(self, view: JobView) -> None:
        """The queue's status callback: write the new status to the store."""
        if self.store is not None:
            self.store.set_job(view.id, view.status, view.message, step=view.progress.step,
                               total=view.progress.total or None)

    def _enqueue(self, request: TrainingRequest, job_id: str) -> JobView:
        with self._lock:
            self._jobs[job_id] = (self._ref(request.owner), name_key(request.name))
        return self.queue.submit(f"Training {request.name}", self.work(request, job_id),
                                 job_id=job_id, on_status=self._record)

    def resume(self) -> list[JobView]:
        """Once at start-up: :meth:`settle` the recorded jobs, then :meth:`requeue` the queued
        ones. Returns the requeued jobs."""
        return self.requeue(self.settle())

    def settle(self) -> list[JobRecord]:
        """Once at start-up: a job recorded as running becomes ``interrupted`` (with a message
        saying to train again), or ``done`` when its identity reached the owner's library just
        before the server died. Returns the queued jobs (with their photos), oldest first."""
        if self.store is None:
            return []
        interrupted, queued = self.store.recover_jobs()
        for record in interrupted:
            try:
                library = self._library(record.owner, record.folder)
                saved = library.get(record.name).metadata.get("job") == record.id
            except LibraryError:
                saved = False
            if saved:
                self.store.set_job(record.id, "done", f"saved {record.name} to the library "
                                   "(just before the server restarted)")
        return queued

    def retrainable(self, owner: Owner = LOCAL) -> list[str]:
        """The owner's interrupted jobs that can be trained again in one click, newest first."""
        return self.store.retrainable(owner.id) if self.store is not None else []

    def retrain(self, job_id: object, owner: Owner = LOCAL) -> tuple[JobView, str]:
        """Train an interrupted job again with what it kept: photo, name, pronouns, steps and
        seed (consent was given when it was submitted). The photo is checked again, the new job
        queued, then the old job's photo dropped. Returns (the new job, the name).

        Raises:
            TrainingInputError: not the owner's interrupted job, or its photo is gone; and what
                :meth:`check` raises (the name was taken meanwhile, say).
        """
        record = self.store.job(job_id) if self.store is not None and isinstance(job_id, str) \
            else None
        if record is None or record.owner != owner.id:
            raise TrainingInputError(f"no training job of yours with id {str(job_id)[:20]!r}")
        if record.status != "interrupted" or not record.photo:
            raise TrainingInputError(f"the training of {show(record.name)} was not interrupted "
                                     "or was already started again; upload the photo and press "
                                     "Train")
        request = self.check(record.photo, record.name, record.pronouns, True, record.steps,
                             record.seed, owner=owner)
        view = self.submit(request)
        self.store.drop_photo(record.id, f"{record.message.split(';')[0]}; trained again "
                                         f"(job {view.id})")
        return view, request.name

    def requeue(self, queued: list[JobRecord]) -> list[JobView]:
        """Queue the recorded jobs ``queued`` again under their ids (those whose owner does not
        fit this mode fail with a message)."""
        views = []
        for record in queued:
            assert self.store is not None  # records come from the store
            try:
                self._library(record.owner, record.folder)
            except LibraryError as exc:
                self.store.set_job(record.id, "failed", f"cannot run after the restart: {exc}")
                continue
            request = TrainingRequest(name=record.name, pronouns=record.pronouns,
                                      photo=record.photo or b"", steps=record.steps,
                                      seed=record.seed, owner=record.owner, folder=record.folder)
            views.append(self._enqueue(request, record.id))
        return views

    def _ref(self, owner_id: str) -> str:
        """The owner id as the store keeps it (a browser key only as its HMAC)."""
        return self.store.owner_ref(owner_id) if self.store is not None else owner_id

    def _library(self, owner_id: str, folder: str = "") -> IdentityLibrary:
        """The library of a job's owner: by its folder name when known (stored ids of browser
        owners are hashes), else by its id."""
        if folder:
            return self.workspace.library_in(folder)
        return self.workspace.library(parse_owner(owner_id))

    def _owns(self, job_id: str, owner: Owner) -> bool:
        with self._lock:
            known = self._jobs.get(job_id)
        if known is not None:
            return known[0] == self._ref(owner.id)
        record = self.store.job(job_id) if self.store is not None else None
        return record is not None and record.owner == self._ref(owner.id)

    def view(self, job_id: str, owner: Owner = LOCAL) -> JobView | None:
        """The owner's job ``job_id`` (live, else as recorded), None when unknown or not theirs."""
        if not isinstance(job_id, str) or not self._owns(job_id, owner):
            return None
        live = self.queue.get(job_id)
        if live is not None:
            return live
        record = self.store.job(job_id) if self.store is not None else None
        return _record_view(record) if record is not None else None

    def views(self, job_ids: Iterable[str], owner: Owner = LOCAL) -> list[JobView]:
        """Snapshots of the owner's jobs among ``job_ids`` (unknown, forgotten or other owners'
        ids are skipped)."""
        views = (self.view(job_id, owner) for job_id in job_ids or ())
        return [view for view in views if view is not None]

    def recent(self, owner: Owner, limit: int = 20) -> list[JobView]:
        """The owner's newest ``limit`` jobs from the store (empty without a store)."""
        if self.store is None:
            return []
        return self.views([record.id for record in self.store.jobs(owner.id, limit)], owner)

    def faces(self, views: Iterable[JobView], owner: Owner = LOCAL) -> dict[str, Path | None]:
        """job id -> the library face crop of each finished job's identity (None if gone)."""
        out: dict[str, Path | None] = {}
        for view in views:
            if view.status != "done":
                continue
            with self._lock:
                known = self._jobs.get(view.id)
            record = self.store.job(view.id) if known is None and self.store is not None else None
            name = known[1] if known is not None else (record.name if record is not None else None)
            try:
                out[view.id] = self.workspace.library(owner).get(name).face_path if name else None
            except LibraryError:
                out[view.id] = None
        return out

    def cancel(self, job_id: str, owner: Owner = LOCAL) -> bool:
        """Ask the owner's job to stop; False when it is unknown, finished or not theirs."""
        return self._owns(job_id, owner) and self.queue.cancel(job_id)


def _record_view(record: JobRecord) -> JobView:
    """A stored job as a snapshot (no queue position: it is not in this process's queue)."""
    return JobView(id=record.id, label=record.label, status=record.status,  # type: ignore[arg-type]
                   progress=JobProgress(step=record.step, total=record.total),
                   message=record.message, position=None, created=record.created)


def _whole_number(value: object, label: str) -> int:
    """``value`` (a number or its text) as an int; TrainingInputError for fractions, NaN, inf."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise TrainingInputError(f"{label} must be a whole number, got {show(str(value))}") from None
    if not number.is_integer():
        raise TrainingInputError(f"{label} must be a whole number, got {show(str(value))}")
    return int(number)


def _duration(seconds: float) -> str:
    """'about 40 s', 'about 3 min', 'about 1 h 5 min'."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60} min"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def job_line(view: JobView) -> str:
    """What a training job is doing, in words: queued (place in line), learning (percent, time
    left), ready, failed (why) or cancelled. Loss values and internal notes are not shown."""
    who = view.label.removeprefix("Training ").strip() or view.label
    p = view.progress
    if view.status == "queued":
        if not view.position:
            return f"{who}: starting …"
        return (f"{who}: queued, {_ordinal(view.position + 1)} in line "
                f"({view.position} training{'s' if view.position != 1 else ''} ahead)")
    if view.status == "running":
        if not p.step:
            return f"{who}: preparing the photo …"
        left = f", {_duration(p.eta_s)} left" if p.eta_s is not None else ""
        return f"{who}: learning the face, {100 * view.fraction:.0f}% done{left}"
    if view.status == "done":
        return f"{who} is ready and in your library"
    if view.status == "cancelled":
        return f"{who}: training cancelled"
    if view.status == "interrupted":
        return f"{who}: interrupted by a server restart: {view.message or 'train it again'}"
    reason = view.message or "an unexpected error (see the server log)"
    return f"{who}: training failed: {reason}"


def job_dict(view: JobView) -> dict:
    """A JSON-ready snapshot of a job (for the app's API)."""
    p = view.progress
    return {"id": view.id, "label": view.label, "status": view.status, "step": p.step,
            "total": p.total, "loss": p.loss, "eta_s": p.eta_s, "position": view.position,
            "message": view.message, "finished": view.finished, "text": job_line(view)}


def _thumbnail(path: Path | None, size: int = 48) -> str:
    """An ``<img>`` with the face crop at ``path`` inlined (data URI), or "" without one."""
    if path is None or not Path(path).is_file():
        return ""
    try:
        with Image.open(path) as image:
            small = image.convert("RGB")
            small.thumbnail((size, size))
            buffer = io.BytesIO()
            small.save(buffer, format="JPEG", quality=85)
    except OSError:
        return ""
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<img class="train-face" alt="face" src="data:image/jpeg;base64,{data}" '
            f'style="width:{size}px;height:{size}px;border-radius:4px;margin-right:8px">')


def progress_html(views: Iterable[JobView], faces: Mapping[str, Path | None] | None = None) -> str:
    """Progress cards (HTML) for a browser's training jobs, newest first.

    Args:
        faces: job id -> the face crop of a finished job's identity (shown on its card).
    """
    rows = []
    for view in sorted(views, key=lambda v: v.created, reverse=True):
        percent = 100.0 if view.status == "done" else 100.0 * view.fraction
        colour = {"done": "#2e7d32", "failed": "#c62828", "cancelled": "#757575",
                  "interrupted": "#ef6c00"}.get(view.status, "#1565c0")
        bar = "" if view.finished else (
            f'<div style="background:#e0e0e0;border-radius:4px;height:10px;overflow:hidden">'
            f'<div style="width:{percent:.0f}%;background:{colour};height:10px"></div></div>')
        face = _thumbnail((faces or {}).get(view.id)) if view.status == "done" else ""
        rows.append(
            f'<div class="train-job" data-status="{view.status}" data-job="{html.escape(view.id)}" '
            f'style="margin:6px 0;display:flex;align-items:center">{face}'
            f'<div style="flex:1"><div style="font-size:0.95em;color:{colour}">'
            f'{html.escape(job_line(view))}</div>{bar}</div></div>')
    return "".join(rows) or '<div class="train-job-none">No training yet.</div>'


__all__ = ["CONSENT_MESSAGE", "MAX_TRAIN_STEPS", "TrainingInputError", "TrainingRequest",
           "TrainingService", "job_dict", "job_line", "progress_html"]
