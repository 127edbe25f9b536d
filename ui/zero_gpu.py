"""Train and Cancel on a ZeroGPU Space: training streams inside the Train request.

On ZeroGPU the GPU exists only inside ``spaces.GPU`` functions called from a request, so the Train
button's handler is a generator that iterates :meth:`serving.zero_gpu.ZeroGPUTraining.run`
and streams the progress bar to the page; *Cancel training* cancels that request (Gradio closes
the generator, which stops the training between steps). Everywhere else the Characters step keeps
the background queue (:mod:`ui.characters`). Same ``api_name``s and outputs in both modes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import gradio as gr

from ui.wiring import TRAINING, Shared, guarded, library_view

if TYPE_CHECKING:  # pragma: no cover
    from session import Studio
    from ui.characters import CharactersStep

#: The id shown for a streamed run (it is not on the queue, so ``job_status`` does not know it).
STREAM_JOB_ID = "zerogpu"


def _snapshot(label: str, started: float, item: object):
    """A :class:`~serving.jobs.JobView` for one streamed update (progress or message)."""
    from serving.jobs import JobProgress, JobView

    if isinstance(item, JobProgress):
        return JobView(id=STREAM_JOB_ID, label=label, status="running", progress=item, message="",
                       position=0, created=started)
    return JobView(id=STREAM_JOB_ID, label=label, status="done", progress=JobProgress(1, 1),
                   message=str(item), position=None, created=started)


def wire_training(studio: "Studio", shared: Shared, step: "CharactersStep") -> None:
    """Connect Train (streaming, inside ``spaces.GPU``) and Cancel training on ZeroGPU."""
    from serving.jobs import JobProgress
    from serving.training_service import CONSENT_MESSAGE, job_line, progress_html

    def train(state, photo, name, pronouns, consent, train_steps_value, job_ids):
        job_ids = job_ids or []
        if not consent:  # a warning, not an error, as on the queue
            gr.Warning(CONSENT_MESSAGE[0].upper() + CONSENT_MESSAGE[1:])
            yield (f"Not started: {CONSENT_MESSAGE}.", "", job_ids, gr.skip(), gr.skip())
            return
        request = studio.training.check(photo, name, pronouns, consent, train_steps_value,
                                        owner=studio.owner_of(state), find_face=False)
        label, started = f"Training {request.name}", time.time()
        seconds = studio.zero_gpu.duration_s(request)
        yield (f"{label}: asking ZeroGPU for up to {seconds} s of GPU time …", "", job_ids,
               progress_html([_snapshot(label, started, JobProgress(0, request.steps))]), gr.skip())
        for item in studio.zero_gpu.run(request):
            view = _snapshot(label, started, item)
            yield (job_line(view), "", job_ids, progress_html([view]), gr.skip())

    event = step.train_button.click(
        guarded(train),
        inputs=[shared.session, step.train_photo, step.train_name, step.train_pronouns,
                step.train_consent, step.train_steps, shared.jobs],
        outputs=[step.train_status, step.train_job_id, shared.jobs, step.train_progress,
                 shared.timer],
        api_name="train", **TRAINING)
    event.success(guarded(lambda state, selected: library_view(studio, state, keep=selected)),
                  inputs=[shared.session, step.library_choice],
                  outputs=[*step.library_outputs(), shared.shown_names], api_visibility="private")

    def cancel_training():
        return "Cancelling the training (nothing is saved).", gr.skip(), gr.skip()

    step.train_cancel.click(cancel_training,
                            outputs=[step.train_status, step.train_progress, shared.timer],
                            cancels=[event], api_name="cancel_training")


__all__ = ["STREAM_JOB_ID", "wire_training"]
