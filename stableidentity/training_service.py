"""Training identities in the background for the app: check the input, queue the job, report.

:class:`TrainingService` sits between the web app and the :class:`~stableidentity.jobs.TrainingQueue`:

* :meth:`TrainingService.check` validates everything a user can get wrong (consent, name, pronouns,
  steps, a readable photo with a face) *before* anything is queued, raising one-line errors
  (:class:`TrainingInputError`, :class:`~stableidentity.names.InvalidName`,
  :class:`~stableidentity.library.IdentityExists`, :class:`~stableidentity.face_prep.FacePrepError`);
* :meth:`TrainingService.submit` queues the training (one at a time per GPU; others wait and
  see their position) and saves the result into the library when it finishes;
* :meth:`TrainingService.views` returns the current snapshots of a browser's jobs, so a reloaded
  page finds them again by id; only the owner's jobs are ever returned.

The photo's bytes are read at submit time: the job does not depend on the upload staying on disk.
With a :class:`~stableidentity.store.Store`, every job and each status change is recorded in
SQLite (the photo only until the job ends), and :meth:`TrainingService.resume` (called once at
start-up) marks a job that was running when the server died as ``interrupted`` with a message
(or ``done`` when its identity reached the library just before) and queues the waiting ones again
under their old ids. Each job trains into its owner's library (:mod:`stableidentity.owners`).
"""

from __future__ import annotations

import html
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from configs import load_limits
from stableidentity.face_prep import FacePrepError, load_photo, prepare_face
from stableidentity.jobs import JobProgress, JobView, TrainingQueue, WorkFunction
from stableidentity.library import IdentityExists, save_trained
from stableidentity.names import LibraryError, name_key, parse_pronouns, show, validate_name
from stableidentity.owners import LOCAL, Owner, Workspace, parse_owner
from stableidentity.store import JobRecord, Store

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.loading import Components

#: Most training steps a user may ask for (``configs/limits.yaml``: ``train_steps``).
MAX_TRAIN_STEPS = load_limits().train_steps
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
        owner: the :class:`~stableidentity.owners.Owner` id whose library receives it.
    """

    name: str
    pronouns: str
    photo: bytes
    steps: int
    seed: int | None = None
    warnings: tuple[str, ...] = ()
    owner: str = LOCAL.id


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
            items = [(job_id, key) for job_id, (who, key) in self._jobs.items() if who == owner.id]
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
        if name_key(clean_name) in self.busy_names(owner):
            raise TrainingInputError(f"{show(clean_name)} is already being trained; wait for that "
                                     "job to finish")
        loaded = load_photo(photo)
        if loaded.raw_bytes is None:  # pragma: no cover - paths and bytes always have bytes
            raise FacePrepError("the photo could not be read")
        components = self._components()
        if not find_face:
            return TrainingRequest(name=clean_name, pronouns=clean_pronouns, photo=loaded.raw_bytes,
                                   steps=total, seed=None if seed in (None, "") else int(seed),
                                   owner=owner.id)
        aligned = prepare_face(loaded, components.face_detector,
                               min_image_size=components.config.face.min_image_size,
                               size=components.config.face.aligned_size)
        return TrainingRequest(name=clean_name, pronouns=clean_pronouns, photo=loaded.raw_bytes,
                               steps=total, seed=None if seed in (None, "") else int(seed),
                               warnings=tuple(aligned.warnings), owner=owner.id)

    # ------------------------------------------------------------------ running

    def work(self, request: TrainingRequest, job_id: str | None = None) -> WorkFunction:
        """The job for ``request``: train, save the identity into the owner's library (with
        ``job_id`` in its metadata), return a message.

        The same function runs on the background queue (:meth:`submit`) and, on ZeroGPU, inside
        ``spaces.GPU`` (:class:`stableidentity.zero_gpu.ZeroGPUTraining`).
        """
        from stableidentity.trainer import train_identity

        def work(report: Callable[[JobProgress], None], cancel: threading.Event) -> str:
            library = self.workspace.library(parse_owner(request.owner))
            components = self._components()

            def progress(update) -> None:
                report(JobProgress(step=update.step, total=update.total, loss=update.loss,
                                   elapsed_s=update.elapsed_s, eta_s=update.eta_s))

            report(JobProgress(step=0, total=request.steps))
            trained = train_identity(components, request.photo, steps=request.steps,
                                     progress=progress, cancel=cancel, seed=request.seed)
            identity = save_trained(library, request.name, trained, pronouns=request.pronouns,
                                    config=components.config, job_id=job_id)
            notes = f" (note: {'; '.join(trained.warnings)})" if trained.warnings else ""
            return f"saved {identity.name} to the library{notes}"

        return work

    def submit(self, request: TrainingRequest) -> JobView:
        """Queue ``request`` (recorded in the store first, with its photo); the job saves the
        identity into the owner's library when training ends."""
        job_id = uuid.uuid4().hex[:12]
        if self.store is not None:
            self.store.add_job(JobRecord(
                id=job_id, owner=request.owner, label=f"Training {request.name}",
                name=request.name, pronouns=request.pronouns, steps=request.steps,
                seed=request.seed, status="queued", total=request.steps, photo=request.photo))
        return self._enqueue(request, job_id)

    def _record(self, view: JobView) -> None:
        """The queue's status callback: write the new status to the store."""
        if self.store is not None:
            self.store.set_job(view.id, view.status, view.message, step=view.progress.step,
                               total=view.progress.total or None)

    def _enqueue(self, request: TrainingRequest, job_id: str) -> JobView:
        with self._lock:
            self._jobs[job_id] = (request.owner, name_key(request.name))
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
                library = self.workspace.library(parse_owner(record.owner))
                saved = library.get(record.name).metadata.get("job") == record.id
            except LibraryError:
                saved = False
            if saved:
                self.store.set_job(record.id, "done", f"saved {record.name} to the library "
                                   "(just before the server restarted)")
        return queued

    def requeue(self, queued: list[JobRecord]) -> list[JobView]:
        """Queue the recorded jobs ``queued`` again under their ids (those whose owner does not
        fit this mode fail with a message)."""
        views = []
        for record in queued:
            assert self.store is not None  # records come from the store
            try:
                self.workspace.library(parse_owner(record.owner))
            except LibraryError as exc:
                self.store.set_job(record.id, "failed", f"cannot run after the restart: {exc}")
                continue
            request = TrainingRequest(name=record.name, pronouns=record.pronouns,
                                      photo=record.photo or b"", steps=record.steps,
                                      seed=record.seed, owner=record.owner)
            views.append(self._enqueue(request, record.id))
        return views

    def _owns(self, job_id: str, owner: Owner) -> bool:
        with self._lock:
            known = self._jobs.get(job_id)
        if known is not None:
            return known[0] == owner.id
        record = self.store.job(job_id) if self.store is not None else None
        return record is not None and record.owner == owner.id

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


def job_line(view: JobView) -> str:
    """:meth:`JobView.describe`, saying "starting" for a queued job with nobody ahead of it."""
    if view.status == "queued" and not view.position:
        return f"{view.label}: starting"
    return view.describe()


def job_dict(view: JobView) -> dict:
    """A JSON-ready snapshot of a job (for the app's API)."""
    p = view.progress
    return {"id": view.id, "label": view.label, "status": view.status, "step": p.step,
            "total": p.total, "loss": p.loss, "eta_s": p.eta_s, "position": view.position,
            "message": view.message, "finished": view.finished, "text": job_line(view)}


def progress_html(views: Iterable[JobView]) -> str:
    """Progress bars (HTML) for a browser's training jobs, newest first."""
    rows = []
    for view in sorted(views, key=lambda v: v.created, reverse=True):
        percent = 100.0 if view.status == "done" else 100.0 * view.fraction
        colour = {"done": "#2e7d32", "failed": "#c62828", "cancelled": "#757575",
                  "interrupted": "#ef6c00"}.get(view.status, "#1565c0")
        rows.append(
            f'<div class="train-job" data-status="{view.status}" data-job="{html.escape(view.id)}" '
            f'style="margin:6px 0">'
            f'<div style="font-size:0.9em">{html.escape(job_line(view))}</div>'
            f'<div style="background:#e0e0e0;border-radius:4px;height:10px;overflow:hidden">'
            f'<div style="width:{percent:.0f}%;background:{colour};height:10px"></div></div></div>')
    return "".join(rows) or '<div class="train-job-none">No training jobs yet.</div>'


__all__ = ["CONSENT_MESSAGE", "MAX_TRAIN_STEPS", "TrainingInputError", "TrainingRequest",
           "TrainingService", "job_dict", "job_line", "progress_html"]
