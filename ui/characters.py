"""Step 1 · Characters: train an identity, browse the library, build the story's cast."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from configs import load_limits
from serving.training_service import job_line
from session import StudioError
from ui import zero_gpu
from ui.wiring import (
    FACES,
    MAX_REMEMBERED_JOBS,
    Shared,
    cast_view,
    error_line,
    guarded,
    jobs_view,
    library_view,
    on,
    selected_index,
    warn_all,
)

if TYPE_CHECKING:  # pragma: no cover
    from session import Studio


@dataclass
class CharactersStep:
    """The components of the Characters step (each has the ``elem_id`` of its field name)."""

    train_photo: Any
    train_face: Any
    train_name: Any
    train_pronouns: Any
    train_consent: Any
    train_steps: Any
    train_button: Any
    train_cancel: Any
    train_again: Any
    train_status: Any
    train_job_id: Any
    train_progress: Any
    form_done: Any
    library_summary: Any
    library_gallery: Any
    library_choice: Any
    library_refresh: Any
    library_face: Any
    library_details: Any
    identity_description: Any
    description_comic_only: Any
    description_save: Any
    cast_add: Any
    library_delete: Any
    library_message: Any
    confirm_row: Any
    confirm_text: Any
    delete_yes: Any
    delete_no: Any
    cast_list: Any
    cast_gallery: Any
    cast_choice: Any
    cast_remove: Any

    def cast_outputs(self) -> list:
        """The components :func:`ui.wiring.cast_view` fills."""
        return [self.cast_list, self.cast_gallery, self.cast_choice]

    def library_outputs(self) -> list:
        """The components :func:`ui.wiring.library_view` fills (with ``Shared.shown_names``)."""
        return [self.library_gallery, self.library_choice, self.library_summary]


def _training_form(studio: "Studio") -> dict[str, Any]:
    from serving.training_service import progress_html

    c: dict[str, Any] = {}
    gr.Markdown("### Learn a character\nOne clear photo of one face, the "
                "person's full name and pronouns.")
    with gr.Row():
        # a file, not gr.Image: the app opens it itself and says what is wrong with it
        c["train_photo"] = gr.File(label="Photo (JPEG, PNG or WebP; one face)", type="filepath",
                                   file_count="single", height=150, elem_id="train_photo",
                                   scale=3)
        c["train_face"] = gr.Image(label="Face found", interactive=False, height=150,
                                   elem_id="train_face", scale=2)
    c["train_name"] = gr.Textbox(label="Full name", placeholder="e.g. Ada Lovelace or Agent 47",
                                 elem_id="train_name")
    c["train_pronouns"] = gr.Radio(["he", "she", "they"], label="Pronouns (required)",
                                   elem_id="train_pronouns")
    c["train_consent"] = gr.Checkbox(label="I have the right to use this person's likeness",
                                     elem_id="train_consent")
    with gr.Accordion("Advanced", open=False, elem_id="train_advanced"):
        c["train_steps"] = gr.Number(label="Training steps", value=studio.config.train.steps,
                                     precision=0, elem_id="train_steps")  # the app checks the range
    with gr.Row():
        c["train_button"] = gr.Button("Train", variant="primary", elem_id="train_button")
        c["train_cancel"] = gr.Button("Cancel training", elem_id="train_cancel")
        # a job a restart interrupted kept its photo, name, pronouns and consent: one click
        # (shown on page load while there is such a job)
        c["train_again"] = gr.Button("Train again", variant="primary", elem_id="train_again",
                                     visible=False)
    c["train_status"] = gr.Markdown(elem_id="train_status")
    # the job id is for API callers (the ``train`` endpoint returns it); people see the cards below
    c["train_job_id"] = gr.Textbox(label="Job id", interactive=False, visible=False,
                                   elem_id="train_job_id")
    c["train_progress"] = gr.HTML(progress_html([]), elem_id="train_progress")
    c["form_done"] = gr.State(False)
    return c


def _library_and_cast() -> dict[str, Any]:
    c: dict[str, Any] = {}
    gr.Markdown("### Identity library\nClick a face to select it, then add it "
                "to the story's cast.")
    c["library_summary"] = gr.Markdown(elem_id="library_summary")
    # grows with the library (height auto), each name under its face (ui/app.py's CSS)
    c["library_gallery"] = gr.Gallery(label="Identities", columns=6, height="auto",
                                      allow_preview=False, object_fit="cover", fit_columns=False,
                                      interactive=False, elem_id="library_gallery")
    with gr.Row():
        c["library_choice"] = gr.Dropdown(label="Selected identity", choices=[],
                                          allow_custom_value=True, elem_id="library_choice",
                                          scale=3)
        c["library_refresh"] = gr.Button("Refresh", elem_id="library_refresh", scale=1)
    with gr.Row():
        c["library_face"] = gr.Image(label="Reference crop", interactive=False, height=160,
                                     elem_id="library_face", scale=1)
        c["library_details"] = gr.Markdown(elem_id="library_details")
    with gr.Row():
        c["identity_description"] = gr.Textbox(
            label="Description (appearance, outfit; goes into every panel naming them)",
            placeholder="e.g. short grey hair, red scarf, round glasses", scale=3,
            max_length=load_limits().description_chars, elem_id="identity_description")
        with gr.Column(scale=1, min_width=160):
            c["description_comic_only"] = gr.Checkbox(label="only for this comic", value=False,
                                                      elem_id="description_comic_only")
            c["description_save"] = gr.Button("Save description", elem_id="description_save")
    with gr.Row():
        c["cast_add"] = gr.Button("Add to cast", variant="primary", elem_id="cast_add")
        c["library_delete"] = gr.Button("Delete from library", variant="stop",
                                        elem_id="library_delete")
    c["library_message"] = gr.Markdown(elem_id="library_message")
    with gr.Row(visible=False, elem_id="library_confirm_row") as confirm_row:
        c["confirm_text"] = gr.Markdown(elem_id="library_confirm_text")
        c["delete_yes"] = gr.Button("Yes, delete", variant="stop", elem_id="library_delete_confirm")
        c["delete_no"] = gr.Button("Keep it", elem_id="library_delete_cancel")
    c["confirm_row"] = confirm_row
    gr.Markdown("### Cast\nThe characters of this story (click one to select it).")
    c["cast_list"] = gr.Markdown(elem_id="cast_list")
    c["cast_gallery"] = gr.Gallery(label="Cast", columns=6, height="auto", allow_preview=False,
                                   object_fit="cover", fit_columns=False, interactive=False,
                                   elem_id="cast_gallery")
    with gr.Row():
        c["cast_choice"] = gr.Dropdown(label="Cast member", choices=[], allow_custom_value=True,
                                       elem_id="cast_choice", scale=3)
        c["cast_remove"] = gr.Button("Remove from cast", elem_id="cast_remove", scale=1)
    return c


def build(studio: "Studio") -> CharactersStep:
    """Lay out the Characters tab (call inside ``gr.Blocks``)."""
    with gr.Tab("1 · Characters", id="characters", elem_id="tab_characters"):
        with gr.Row():
            with gr.Column(scale=1):
                form = _training_form(studio)
            with gr.Column(scale=2):
                rest = _library_and_cast()
    return CharactersStep(**form, **rest)


def _wire_photo(studio: "Studio", step: CharactersStep) -> None:
    def check_photo(path):
        _, aligned = studio.training.check_photo(path)
        notes = f" Note: {'; '.join(aligned.warnings)}." if aligned.warnings else ""
        return aligned.image, f"Photo checked: one face found.{notes}"

    on(step.train_photo.upload, check_photo, inputs=[step.train_photo],
       outputs=[step.train_face, step.train_status], line=step.train_status,
       api_name="check_photo", **FACES)

    def clear_photo():
        return None, ""

    step.train_photo.clear(clear_photo, outputs=[step.train_face, step.train_status],
                           api_visibility="private")


def _wire_training(studio: "Studio", signed_in: Any, shared: Shared, step: CharactersStep) -> None:
    from serving.training_service import CONSENT_MESSAGE

    def on_load(state, job_ids):
        html, active, views = jobs_view(studio, state, job_ids)
        gallery, choice, summary, names = library_view(studio, state)
        seen = [v.id for v in views if v.finished]
        return html, active, gallery, choice, summary, names, seen

    signed_in.then(guarded(on_load), inputs=[shared.session, shared.jobs],
                   outputs=[step.train_progress, shared.timer, *step.library_outputs(),
                            shared.shown_names, shared.finished_seen], api_visibility="private")

    def train(state, photo, name, pronouns, consent, train_steps_value, job_ids):
        if not consent:  # a warning, not an error: nothing happened, the form stays as it is
            text = CONSENT_MESSAGE[0].upper() + CONSENT_MESSAGE[1:]
            gr.Warning(text)
            return (error_line(f"Not started: {text}."), "", job_ids or [], gr.skip(), gr.skip(),
                    False, state)
        request = studio.training.check(photo, name, pronouns, consent, train_steps_value,
                                        owner=studio.owner_of(state))
        warn_all(request.warnings)
        view = studio.training.submit(request)
        remembered = ([*(job_ids or []), view.id])[-MAX_REMEMBERED_JOBS:]
        html, active, _ = jobs_view(studio, state, remembered)
        # never stale: the job's state (queued, learning, ready) is in its line below
        return (f"Training of **{request.name}** submitted: its progress is shown below, to the "
                "end. You can learn the next character meanwhile.", view.id, remembered, html,
                active, True, state)

    if studio.zero_gpu is not None:  # ZeroGPU: Train streams inside spaces.GPU (ui/zero_gpu.py)
        zero_gpu.wire_training(studio, shared, step)
    else:
        on(step.train_button.click, train,
           inputs=[shared.session, step.train_photo, step.train_name, step.train_pronouns,
                   step.train_consent, step.train_steps, shared.jobs],
           outputs=[step.train_status, step.train_job_id, shared.jobs, step.train_progress,
                    shared.timer, step.form_done, shared.session],
           line=step.train_status, api_name="train", **FACES).then(
            _clear_form, inputs=[step.form_done],
            outputs=[step.train_photo, step.train_face, step.train_name, step.train_pronouns,
                     step.train_consent, step.form_done], api_visibility="private")

    def poll(state, job_ids, seen, selected):
        html, active, views = jobs_view(studio, state, job_ids)
        newly = [v for v in views if v.finished and v.id not in (seen or [])]
        for view in newly:
            if view.status in ("failed", "interrupted"):
                gr.Warning(job_line(view))
        if not newly:
            return html, active, gr.skip(), gr.skip(), gr.skip(), gr.skip(), seen
        gallery, choice, summary, names = library_view(studio, state, keep=selected)
        return html, active, gallery, choice, summary, names, [*(seen or []), *(v.id for v in newly)]

    shared.timer.tick(guarded(poll),
                      inputs=[shared.session, shared.jobs, shared.finished_seen,
                              step.library_choice],
                      outputs=[step.train_progress, shared.timer, *step.library_outputs(),
                               shared.shown_names, shared.finished_seen],
                      show_progress="hidden", api_visibility="private")
    if studio.zero_gpu is None:
        _wire_train_again(studio, signed_in, shared, step)
    _wire_job_status(studio, shared, step)

    def cancel_training(state, job_ids):
        owner = studio.owner_of(state)
        views = [v for v in studio.training.views(job_ids or [], owner) if not v.finished] \
            if owner is not None else []
        if not views:
            raise StudioError("no training of yours is queued or running")
        for view in views:
            studio.training.cancel(view.id, owner)
        html, active, _ = jobs_view(studio, state, job_ids)
        return f"Cancelling {len(views)} training{'s' if len(views) != 1 else ''}.", html, active

    if studio.zero_gpu is None:
        on(step.train_cancel.click, cancel_training, inputs=[shared.session, shared.jobs],
           outputs=[step.train_status, step.train_progress, shared.timer], line=step.train_status,
           api_name="cancel_training")


def _wire_train_again(studio: "Studio", signed_in: Any, shared: Shared,
                      step: CharactersStep) -> None:
    """*Train again* (shown while the owner has a job a restart interrupted): the newest such
    job is queued anew with its kept photo, name, pronouns and steps. API ``train_again``
    (job id)."""
    def offer(state):
        owner = studio.owner_of(state)
        waiting = studio.training.retrainable(owner) if owner is not None else []
        if not waiting:
            return gr.Button(visible=False), gr.skip()
        view = studio.training.view(waiting[0], owner)
        who = view.label.removeprefix("Training ") if view is not None else "an identity"
        return (gr.Button(visible=True), f"The training of **{who}** was interrupted by a server "
                "restart: press **Train again** to start it over with the same photo.")

    signed_in.then(guarded(offer), inputs=[shared.session],
                   outputs=[step.train_again, step.train_status], api_visibility="private")

    def queued_again(state, job_id):
        view, name = studio.training.retrain(job_id, studio.owner_of(state))
        return view, (f"Training of **{name}** submitted again with the same photo: its progress "
                      "is shown below, to the end.")

    def retrain_newest(state, job_ids):
        owner = studio.owner_of(state)
        waiting = studio.training.retrainable(owner) if owner is not None else []
        if not waiting:
            raise StudioError("no interrupted training to start again: an interrupted job is "
                              "trained again once (then upload the photo and press Train)")
        view, line = queued_again(state, waiting[0])
        remembered = ([*(job_ids or []), view.id])[-MAX_REMEMBERED_JOBS:]
        html, active, _ = jobs_view(studio, state, remembered)
        more = len(waiting) > 1
        return line, view.id, remembered, html, active, gr.Button(visible=more)

    on(step.train_again.click, retrain_newest, inputs=[shared.session, shared.jobs],
       outputs=[step.train_status, step.train_job_id, shared.jobs, step.train_progress,
                shared.timer, step.train_again], line=step.train_status,
       api_visibility="private", **FACES)

    def train_again(state, job_id):
        view, line = queued_again(state, job_id)
        html, active, _ = jobs_view(studio, state, [job_id, view.id])
        return line, view.id, html, active

    trigger = gr.Button(visible=False, elem_id="train_again_api")
    on(trigger.click, train_again, inputs=[shared.session, step.train_job_id],
       outputs=[step.train_status, step.train_job_id, step.train_progress, shared.timer],
       line=step.train_status, api_name="train_again", **FACES)


def _clear_form(done):
    """After a training was queued: an empty form for the next character."""
    if not done:
        return (gr.skip(),) * 5 + (False,)
    return None, None, "", None, False, False


def _wire_job_status(studio: "Studio", shared: Shared, step: CharactersStep) -> None:
    """``job_status``: one job of the caller's (an event on a hidden button rather than
    ``gr.api``, so it sees the session's owner; the API takes the job id alone)."""
    from serving.training_service import job_dict

    trigger = gr.Button(visible=False, elem_id="job_status_trigger")
    result = gr.JSON(visible=False, elem_id="job_status_result")

    def job_status(state, job_id):
        """The state of a training job: status, step, total, eta_s, position, message."""
        owner = studio.owner_of(state)
        view = studio.training.view(job_id, owner) if owner is not None else None
        if view is None:
            raise gr.Error(f"no training job with id '{job_id}'", print_exception=False)
        return job_dict(view)

    trigger.click(guarded(job_status), inputs=[shared.session, step.train_job_id],
                  outputs=[result], api_name="job_status")


def _wire_library(studio: "Studio", shared: Shared, step: CharactersStep) -> None:
    def refresh_library(state, selected=None):
        return library_view(studio, state, keep=selected)

    on(step.library_refresh.click, refresh_library, inputs=[shared.session, step.library_choice],
       outputs=[*step.library_outputs(), shared.shown_names], line=step.library_message,
       api_name="library")

    def select_identity(names, evt: gr.SelectData):
        index = selected_index(evt)
        name = names[index] if names and 0 <= index < len(names) else None
        return gr.Dropdown(value=name)

    step.library_gallery.select(guarded(select_identity), inputs=[shared.shown_names],
                                outputs=[step.library_choice], api_visibility="private")

    def show_identity(state, name):
        return studio.identity_details(state, name)

    def show_description(state, name):
        return studio.description(state, name)[0] if name else ""

    def show_both(state, name):
        return (*show_identity(state, name), show_description(state, name))

    # the page: ONE event fills the face, the details and the description, so a description
    # typed (or a message shown) right after choosing is never overwritten by a late second event
    on(step.library_choice.change, show_both, inputs=[shared.session, step.library_choice],
       outputs=[step.library_face, step.library_details, step.identity_description],
       line=step.library_message, api_visibility="private")
    # the API keeps one endpoint for each (hidden triggers: the name is their input)
    identity_api = gr.Button(visible=False, elem_id="identity_api")
    on(identity_api.click, show_identity, inputs=[shared.session, step.library_choice],
       outputs=[step.library_face, step.library_details], line=step.library_message,
       api_name="identity")
    description_api = gr.Button(visible=False, elem_id="identity_description_api")
    on(description_api.click, show_description, inputs=[shared.session, step.library_choice],
       outputs=[step.identity_description], line=step.library_message,
       api_name="identity_description")

    def save_description(state, name, text, comic_only):
        message = studio.describe_identity(state, name, text, bool(comic_only))
        _face, details = studio.identity_details(state, name)
        return details, studio.description(state, name)[0], message, state

    on(step.description_save.click, save_description,
       inputs=[shared.session, step.library_choice, step.identity_description,
               step.description_comic_only],
       outputs=[step.library_details, step.identity_description, step.library_message,
                shared.session], line=step.library_message, api_name="identity_describe")


def _wire_cast(studio: "Studio", shared: Shared, step: CharactersStep) -> None:
    def add_cast(state, name):
        studio.add_to_cast(state, name)
        return (*cast_view(studio, state), state)

    on(step.cast_add.click, add_cast, inputs=[shared.session, step.library_choice],
       outputs=[*step.cast_outputs(), shared.session], line=step.library_message,
       api_name="cast_add")

    def select_cast_member(state, evt: gr.SelectData):
        index = selected_index(evt)
        return gr.Dropdown(value=state.cast[index] if 0 <= index < len(state.cast) else None)

    step.cast_gallery.select(guarded(select_cast_member), inputs=[shared.session],
                             outputs=[step.cast_choice], api_visibility="private")

    def remove_cast(state, name):
        studio.remove_from_cast(state, name)
        return (*cast_view(studio, state), state)

    on(step.cast_remove.click, remove_cast, inputs=[shared.session, step.cast_choice],
       outputs=[*step.cast_outputs(), shared.session], line=step.library_message,
       api_name="cast_remove")


def _wire_delete(studio: "Studio", shared: Shared, step: CharactersStep) -> None:
    def ask_delete(state, name):
        question = studio.request_delete(state, name)
        return question, gr.Row(visible=True), state

    on(step.library_delete.click, ask_delete, inputs=[shared.session, step.library_choice],
       outputs=[step.confirm_text, step.confirm_row, shared.session], line=step.library_message,
       api_name="library_delete")

    def do_delete(state):
        name = studio.confirm_delete(state)
        gr.Info(f"Deleted {name} from the library.")
        return (gr.Row(visible=False), *library_view(studio, state), *cast_view(studio, state),
                state)

    on(step.delete_yes.click, do_delete, inputs=[shared.session],
       outputs=[step.confirm_row, *step.library_outputs(), shared.shown_names,
                *step.cast_outputs(), shared.session], line=step.library_message,
       api_name="library_delete_confirm")

    def keep(state):
        studio.cancel_delete(state)
        return gr.Row(visible=False), state

    on(step.delete_no.click, keep, inputs=[shared.session],
       outputs=[step.confirm_row, shared.session], line=step.library_message,
       api_name="library_delete_cancel")


def wire(studio: "Studio", signed_in: Any, shared: Shared, step: CharactersStep) -> None:
    """Connect the Characters step's events (call inside ``gr.Blocks``, after every ``build``);
    ``signed_in`` is the page-load event that set the session's owner."""
    _wire_photo(studio, step)
    _wire_training(studio, signed_in, shared, step)
    _wire_library(studio, shared, step)
    _wire_cast(studio, shared, step)
    _wire_delete(studio, shared, step)
