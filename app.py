"""Comic Identity: the Gradio web app (wiring only; the logic lives in the packages).

    python app.py [--preset tiny|sdxl] [--config FILE] [--library DIR] [--host H] [--port P] [--share]

Four steps, one tab each: Characters (train identities, the library, the cast), Story (parse the
story into an editable panel list), Style and settings, Comic (generate, pick candidates, redraw,
download, open a saved project). Handlers are thin calls into :class:`pipelines.studio.Studio`;
per-browser data lives in a ``gr.State`` holding a :class:`pipelines.studio.Session`. Every event
has an ``api_name`` (see docs/APP.md) so the whole flow can be driven with ``gradio_client``.
Runs unchanged as a Hugging Face Space (GPU handlers are wrapped in ``spaces.GPU`` when the
``spaces`` package is present).
"""

import argparse
import functools
import inspect
import os
import sys
from typing import Any, Callable

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from configs import AppConfig, ConfigError, available_presets, load_config  # noqa: E402

#: How often the page polls its training jobs (seconds).
POLL_SECONDS = 1.0
#: Job ids a browser remembers.
MAX_REMEMBERED_JOBS = 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="app.py", description="Comic Identity: identity-preserving comics from a story and one photo per character.")
    parser.add_argument("--preset", choices=available_presets(), default=None,
                        help="model preset (default: $COMIC_PRESET or sdxl; 'tiny' runs offline with random weights)")
    parser.add_argument("--config", default=None, help="a preset YAML file (wins over --preset)")
    parser.add_argument("--library", default=None, help="identity library folder (default: the preset's library_dir)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), help="address to serve on")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                        help="port to serve on")
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link")
    parser.add_argument("--check", action="store_true", help="load every model of the preset, then exit")
    return parser.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> AppConfig:
    """The preset chosen on the command line, with ``--library`` applied."""
    config = load_config(preset=args.preset, path=args.config)
    if args.library:
        config = config.replace(library_dir=args.library)
    return config


def check_models(config: AppConfig) -> None:
    """Load every component once (downloads on first use), so failures show before serving."""
    from pipelines.loading import load_components

    components = load_components(config)
    print(f"preset '{config.name}' ready on {components.device} ({components.dtype})")


# ----------------------------------------------------------------------------- wiring helpers

def gpu(fn: Callable) -> Callable:
    """``spaces.GPU(fn)`` on Hugging Face Spaces (ZeroGPU), ``fn`` elsewhere."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return fn
    return spaces.GPU(fn)


def guarded(fn: Callable) -> Callable:
    """Turn any exception of a handler into a one-line ``gr.Error`` (never a traceback)."""
    import gradio as gr

    from pipelines.studio import user_message

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - shown to the user as one line
                raise gr.Error(user_message(exc), print_exception=False) from None
        return stream

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - shown to the user as one line
            raise gr.Error(user_message(exc), print_exception=False) from None
    return call


# ----------------------------------------------------------------------------- the page

def build_demo(studio):
    """The Blocks app for ``studio`` (a :class:`pipelines.studio.Studio`)."""
    import gradio as gr

    from pipelines.panel_table import HEADERS, add_row, move_row, remove_row
    from pipelines.studio import MAX_UI_SEED, Session
    from stableidentity.training_service import CONSENT_MESSAGE, job_dict, job_line, progress_html

    config = studio.config
    defaults = studio.default_settings()
    step = studio.size_step()

    def warn_all(lines) -> None:
        for line in lines:
            gr.Warning(line)

    # ------------------------------------------------------------- shared view pieces

    def library_view(keep=None):
        """Gallery, dropdown (keeping ``keep`` selected while it exists), summary, names."""
        entries = studio.library_entries()
        names = [e.name for e in entries]
        choice = gr.Dropdown(choices=names, value=keep if keep in names else None)
        return studio.gallery_items(), choice, studio.library_summary(), names

    def cast_view(session):
        return (studio.cast_text(session), studio.cast_gallery(session),
                gr.Dropdown(choices=list(session.cast), value=None))

    def jobs_view(job_ids):
        views = studio.training.views(job_ids or [])
        running = any(not v.finished for v in views)
        return progress_html(views), gr.Timer(active=running), views

    with gr.Blocks(title="Comic Identity") as demo:
        # a plain function, not the bound method: gradio deep-copies component props per page
        # load, and copying a bound method copies its object (the studio, with the models)
        session = gr.State(Session(), delete_callback=lambda state: studio.forget(state))
        jobs = gr.BrowserState([], storage_key="comic_identity_jobs")
        finished_seen = gr.State([])
        shown_names = gr.State([])
        timer = gr.Timer(POLL_SECONDS, active=False)

        gr.Markdown("# Comic Identity\nOne photo per character, a story, a style: an "
                    "identity-preserving comic. Work through the four steps from left to right. "
                    f"Preset **{config.name}**.", elem_id="header")
        gr.Markdown(f"**The models could not be loaded:** {studio.load_error}" if studio.load_error
                    else "", elem_id="load_error", visible=bool(studio.load_error))

        with gr.Tabs(elem_id="steps"):
            # ========================================================= 1. characters
            with gr.Tab("1 · Characters", id="characters", elem_id="tab_characters"):
                with gr.Row():
                    with gr.Column(scale=1):
                        gr.Markdown("### Learn a character\nOne clear photo of one face, the "
                                    "person's full name and pronouns.")
                        train_photo = gr.Image(label="Photo", type="filepath", image_mode=None,
                                               sources=["upload", "clipboard", "webcam"],
                                               height=240, elem_id="train_photo")
                        train_name = gr.Textbox(label="Full name", placeholder="e.g. Ada Lovelace",
                                                elem_id="train_name")
                        train_pronouns = gr.Radio(["he", "she", "they"], label="Pronouns",
                                                  elem_id="train_pronouns")
                        train_consent = gr.Checkbox(
                            label="I have the right to use this person's likeness",
                            elem_id="train_consent")
                        with gr.Accordion("Advanced", open=False, elem_id="train_advanced"):
                            train_steps = gr.Number(label="Training steps",
                                                    value=config.train.steps, precision=0,
                                                    minimum=1, maximum=5000, elem_id="train_steps")
                        with gr.Row():
                            train_button = gr.Button("Train", variant="primary", elem_id="train_button")
                            train_cancel = gr.Button("Cancel training", elem_id="train_cancel")
                        train_status = gr.Markdown(elem_id="train_status")
                        train_job_id = gr.Textbox(label="Job id", interactive=False,
                                                  elem_id="train_job_id")
                        train_progress = gr.HTML(progress_html([]), elem_id="train_progress")
                    with gr.Column(scale=2):
                        gr.Markdown("### Identity library\nClick a face to select it, then add it "
                                    "to the story's cast.")
                        library_summary = gr.Markdown(elem_id="library_summary")
                        library_gallery = gr.Gallery(label="Identities", columns=6, height=250,
                                                     allow_preview=False, object_fit="cover",
                                                     fit_columns=False,
                                                     interactive=False, elem_id="library_gallery")
                        with gr.Row():
                            library_choice = gr.Dropdown(label="Selected identity", choices=[],
                                                         allow_custom_value=True,
                                                         elem_id="library_choice", scale=3)
                            library_refresh = gr.Button("Refresh", elem_id="library_refresh",
                                                        scale=1)
                        with gr.Row():
                            library_face = gr.Image(label="Reference crop", interactive=False,
                                                    height=160, elem_id="library_face", scale=1)
                            library_details = gr.Markdown(elem_id="library_details")
                        with gr.Row():
                            cast_add = gr.Button("Add to cast", variant="primary", elem_id="cast_add")
                            library_delete = gr.Button("Delete from library", variant="stop",
                                                       elem_id="library_delete")
                        with gr.Row(visible=False, elem_id="library_confirm_row") as confirm_row:
                            confirm_text = gr.Markdown(elem_id="library_confirm_text")
                            delete_yes = gr.Button("Yes, delete", variant="stop",
                                                   elem_id="library_delete_confirm")
                            delete_no = gr.Button("Keep it", elem_id="library_delete_cancel")
                        gr.Markdown("### Cast\nThe characters of this story (click one to "
                                    "select it).")
                        cast_list = gr.Markdown(elem_id="cast_list")
                        cast_gallery = gr.Gallery(label="Cast", columns=6, height=150,
                                                  allow_preview=False, object_fit="cover",
                                                  fit_columns=False,
                                                  interactive=False, elem_id="cast_gallery")
                        with gr.Row():
                            cast_choice = gr.Dropdown(label="Cast member", choices=[],
                                                      allow_custom_value=True,
                                                      elem_id="cast_choice", scale=3)
                            cast_remove = gr.Button("Remove from cast", elem_id="cast_remove",
                                                    scale=1)

            # ========================================================= 2. story
            with gr.Tab("2 · Story", id="story", elem_id="tab_story"):
                story_text = gr.Textbox(label="Story", lines=6, elem_id="story_text",
                                        placeholder="Write the story with the characters' full "
                                                    "names, e.g. 'Ada Lovelace met Alan Turing in "
                                                    "a library. She showed him her notes.'")
                story_parse = gr.Button("Process Text", variant="primary", elem_id="story_parse")
                story_info = gr.Markdown(elem_id="story_info")
                gr.Markdown("One row per panel: the sentence, its characters as comma-separated "
                            "full names (at most "
                            f"{config.generation.max_identities_per_panel}), and a seed (blank: "
                            "the comic's seed + the row's index). Edit the cells directly.")
                panels_table = gr.Dataframe(
                    headers=HEADERS, datatype=["str", "str", "str"], type="array",
                    column_count=3, interactive=True, wrap=True, show_row_numbers=True,
                    column_widths=["66%", "24%", "10%"], label="Panels", elem_id="panels_table")
                with gr.Row():
                    panel_row = gr.Number(label="Row", value=1, precision=0, minimum=1,
                                          elem_id="panel_row", scale=1)
                    panel_up = gr.Button("Move up", elem_id="panel_up")
                    panel_down = gr.Button("Move down", elem_id="panel_down")
                    panel_remove = gr.Button("Remove row", elem_id="panel_remove")
                    panel_add = gr.Button("Add row after", elem_id="panel_add")

            # ========================================================= 3. style
            with gr.Tab("3 · Style and settings", id="style", elem_id="tab_style"):
                style_keywords = gr.CheckboxGroup(list(studio.styles.keywords), label="Style keywords",
                                                  elem_id="style_keywords")
                with gr.Row():
                    style_template = gr.Dropdown(studio.style_choices(), value=defaults.style,
                                                 label="Style", elem_id="style_template")
                    comic_title = gr.Textbox(label="Title (first page)", elem_id="comic_title")
                negative_prompt = gr.Textbox(label="Negative prompt", value=defaults.negative_prompt,
                                             lines=2, elem_id="negative_prompt")
                with gr.Row():
                    seed = gr.Number(label="Seed", value=defaults.seed, precision=0, minimum=0,
                                     maximum=MAX_UI_SEED, elem_id="seed")
                    seed_randomize = gr.Checkbox(label="Randomise the seed", value=False,
                                                 elem_id="seed_randomize")
                    candidates = gr.Slider(1, 8, value=defaults.candidates, step=1,
                                           label="Candidates per panel (best of N by face similarity)",
                                           elem_id="candidates")
                with gr.Row():
                    steps = gr.Slider(1, 150, value=defaults.steps, step=1, label="Steps",
                                      elem_id="steps")
                    guidance = gr.Slider(0, 20, value=defaults.guidance, step=0.5,
                                         label="Guidance", elem_id="guidance")
                    width = gr.Number(label="Width", value=defaults.width, precision=0,
                                      minimum=step, step=step, elem_id="width")
                    height = gr.Number(label="Height", value=defaults.height, precision=0,
                                       minimum=step, step=step, elem_id="height")

            # ========================================================= 4. comic
            with gr.Tab("4 · Comic", id="comic", elem_id="tab_comic"):
                generate_button = gr.Button("Generate", variant="primary", elem_id="generate_button")
                generate_status = gr.Markdown(elem_id="generate_status")
                panels_gallery = gr.Gallery(label="Panels (click one to pick its candidates or "
                                            "redraw it)", columns=6, format="png", height=280,
                                            fit_columns=False, elem_id="panels_gallery")
                panel_notes = gr.Markdown(elem_id="panel_notes")
                pages_gallery = gr.Gallery(label="Comic pages (click to enlarge)", columns=2,
                                           format="png", height=720, object_fit="contain",
                                           fit_columns=False, elem_id="pages_gallery")
                downloads = gr.File(label="Downloads: pages (PNG), PDF, project zip, project.json",
                                    file_count="multiple", interactive=False, elem_id="downloads")
                with gr.Row():
                    with gr.Column():
                        gr.Markdown("#### Candidates of a panel")
                        with gr.Row():
                            candidate_panel = gr.Number(label="Panel", value=1, precision=0,
                                                        minimum=1, elem_id="candidate_panel")
                            candidate_show = gr.Button("Show candidates", elem_id="candidate_show")
                        candidates_gallery = gr.Gallery(label="Candidates", columns=4, format="png",
                                                        height=220, fit_columns=False,
                                                        elem_id="candidates_gallery")
                        with gr.Row():
                            candidate_number = gr.Number(label="Candidate", value=1, precision=0,
                                                         minimum=1, elem_id="candidate_number")
                            candidate_use = gr.Button("Use this candidate", elem_id="candidate_use")
                    with gr.Column():
                        gr.Markdown("#### Redraw one panel")
                        redraw_panel = gr.Number(label="Panel", value=1, precision=0, minimum=1,
                                                 elem_id="redraw_panel")
                        redraw_seed = gr.Textbox(label="New seed", placeholder="blank: a random seed",
                                                 elem_id="redraw_seed")
                        redraw_button = gr.Button("Redraw", elem_id="redraw_button")
                with gr.Accordion("Open a saved project", open=False, elem_id="project_section"):
                    project_file = gr.File(label="comic.zip or project.json", file_types=[".zip", ".json"],
                                           type="filepath", elem_id="project_file")
                    project_open = gr.Button("Open project", elem_id="project_open")
                    project_info = gr.Markdown(elem_id="project_info")

        setting_inputs = [style_template, style_keywords, negative_prompt, seed, seed_randomize,
                          steps, guidance, width, height, candidates, comic_title]

        # ------------------------------------------------------------- characters

        def on_load(job_ids):
            html, active, views = jobs_view(job_ids)
            gallery, choice, summary, names = library_view()
            seen = [v.id for v in views if v.finished]
            return html, active, gallery, choice, summary, names, seen

        demo.load(guarded(on_load), inputs=[jobs],
                  outputs=[train_progress, timer, library_gallery, library_choice, library_summary,
                           shown_names, finished_seen], api_visibility="private")

        def train(photo, name, pronouns, consent, train_steps_value, job_ids):
            if not consent:  # a warning, not an error: nothing happened, the form stays as it is
                gr.Warning(CONSENT_MESSAGE[0].upper() + CONSENT_MESSAGE[1:])
                return (f"Not started: {CONSENT_MESSAGE}.", "", job_ids or [], gr.skip(), gr.skip())
            request = studio.training.check(photo, name, pronouns, consent, train_steps_value)
            warn_all(request.warnings)
            view = studio.training.submit(request)
            remembered = ([*(job_ids or []), view.id])[-MAX_REMEMBERED_JOBS:]
            html, active, _ = jobs_view(remembered)
            return (f"Queued: {job_line(view)}", view.id, remembered, html, active)

        train_button.click(guarded(train),
                           inputs=[train_photo, train_name, train_pronouns, train_consent,
                                   train_steps, jobs],
                           outputs=[train_status, train_job_id, jobs, train_progress, timer],
                           api_name="train")

        def poll(job_ids, seen, selected):
            html, active, views = jobs_view(job_ids)
            newly = [v for v in views if v.finished and v.id not in (seen or [])]
            for view in newly:
                if view.status == "failed":
                    gr.Warning(view.describe())
            if not newly:
                return html, active, gr.skip(), gr.skip(), gr.skip(), gr.skip(), seen
            gallery, choice, summary, names = library_view(keep=selected)
            return html, active, gallery, choice, summary, names, [*(seen or []), *(v.id for v in newly)]

        timer.tick(guarded(poll), inputs=[jobs, finished_seen, library_choice],
                   outputs=[train_progress, timer, library_gallery, library_choice, library_summary,
                            shown_names, finished_seen],
                   show_progress="hidden", api_visibility="private")

        def job_status(job_id: str) -> dict:
            """The state of a training job: status, step, total, eta_s, position, message."""
            views = studio.training.views([job_id])
            if not views:
                raise gr.Error(f"no training job with id '{job_id}'", print_exception=False)
            return job_dict(views[0])

        gr.api(job_status, api_name="job_status")

        def cancel_training(job_ids):
            views = [v for v in studio.training.views(job_ids or []) if not v.finished]
            if not views:
                raise gr.Error("no training of yours is queued or running", print_exception=False)
            for view in views:
                studio.training.cancel(view.id)
            html, active, _ = jobs_view(job_ids)
            return f"Cancelling {len(views)} job(s).", html, active

        train_cancel.click(guarded(cancel_training), inputs=[jobs],
                           outputs=[train_status, train_progress, timer], api_name="cancel_training")

        def refresh_library(selected=None):
            return library_view(keep=selected)

        library_refresh.click(guarded(refresh_library), inputs=[library_choice],
                              outputs=[library_gallery, library_choice, library_summary, shown_names],
                              api_name="library")

        def select_identity(names, evt: gr.SelectData):
            index = evt.index if isinstance(evt.index, int) else evt.index[0]
            name = names[index] if names and 0 <= index < len(names) else None
            return gr.Dropdown(value=name)

        library_gallery.select(guarded(select_identity), inputs=[shown_names],
                               outputs=[library_choice], api_visibility="private")

        def show_identity(name):
            return studio.identity_details(name)

        library_choice.change(guarded(show_identity), inputs=[library_choice],
                              outputs=[library_face, library_details], api_name="identity")

        def add_cast(state, name):
            studio.add_to_cast(state, name)
            return (*cast_view(state), state)

        cast_add.click(guarded(add_cast), inputs=[session, library_choice],
                       outputs=[cast_list, cast_gallery, cast_choice, session], api_name="cast_add")

        def select_cast_member(state, evt: gr.SelectData):
            index = evt.index if isinstance(evt.index, int) else evt.index[0]
            return gr.Dropdown(value=state.cast[index] if 0 <= index < len(state.cast) else None)

        cast_gallery.select(guarded(select_cast_member), inputs=[session], outputs=[cast_choice],
                            api_visibility="private")

        def remove_cast(state, name):
            studio.remove_from_cast(state, name)
            return (*cast_view(state), state)

        cast_remove.click(guarded(remove_cast), inputs=[session, cast_choice],
                          outputs=[cast_list, cast_gallery, cast_choice, session],
                          api_name="cast_remove")

        def ask_delete(state, name):
            question = studio.request_delete(state, name)
            return question, gr.Row(visible=True), state

        library_delete.click(guarded(ask_delete), inputs=[session, library_choice],
                             outputs=[confirm_text, confirm_row, session], api_name="library_delete")

        def do_delete(state):
            name = studio.confirm_delete(state)
            gr.Info(f"Deleted {name} from the library.")
            return (gr.Row(visible=False), *library_view(), *cast_view(state), state)

        delete_yes.click(guarded(do_delete), inputs=[session],
                         outputs=[confirm_row, library_gallery, library_choice, library_summary,
                                  shown_names, cast_list, cast_gallery, cast_choice, session],
                         api_name="library_delete_confirm")

        def keep(state):
            studio.cancel_delete(state)
            return gr.Row(visible=False), state

        delete_no.click(guarded(keep), inputs=[session], outputs=[confirm_row, session],
                        api_name="library_delete_cancel")

        # ------------------------------------------------------------- story

        def parse(state, story):
            outcome = studio.parse(state, story)
            warn_all(outcome.warnings)
            return outcome.rows, outcome.info

        story_parse.click(guarded(parse), inputs=[session, story_text],
                          outputs=[panels_table, story_info], api_name="parse")

        def row_up(rows, row):
            table, number = move_row(rows, row, -1)
            return table, number

        def row_down(rows, row):
            table, number = move_row(rows, row, +1)
            return table, number

        panel_up.click(guarded(row_up), inputs=[panels_table, panel_row],
                       outputs=[panels_table, panel_row], api_name="panel_up")
        panel_down.click(guarded(row_down), inputs=[panels_table, panel_row],
                         outputs=[panels_table, panel_row], api_name="panel_down")
        panel_remove.click(guarded(remove_row), inputs=[panels_table, panel_row],
                           outputs=[panels_table], api_name="panel_remove")
        panel_add.click(guarded(add_row), inputs=[panels_table, panel_row],
                        outputs=[panels_table], api_name="panel_add")

        # ------------------------------------------------------------- comic

        def generate(state, rows, style, keywords, negative, seed_value, randomize, steps_value,
                     guidance_value, width_value, height_value, candidates_value, title):
            settings = studio.settings_from(style, keywords, negative, seed_value, randomize,
                                            steps_value, guidance_value, width_value,
                                            height_value, candidates_value, title)
            for update in studio.generate(state, rows, settings):
                warn_all(update.warnings)
                yield (update.gallery, update.status,
                       update.pages if update.done else gr.skip(),
                       update.files if update.done else gr.skip(), update.seed, update.notes, state)

        generate_button.click(gpu(guarded(generate)),
                              inputs=[session, panels_table, *setting_inputs],
                              outputs=[panels_gallery, generate_status, pages_gallery, downloads,
                                       seed, panel_notes, session],
                              api_name="generate", concurrency_id="gpu", concurrency_limit=1)

        def show_candidates(state, number):
            return studio.candidates(state, number)

        candidate_show.click(guarded(show_candidates), inputs=[session, candidate_panel],
                             outputs=[candidates_gallery], api_name="candidates")

        def pick_panel(evt: gr.SelectData):
            number = (evt.index if isinstance(evt.index, int) else evt.index[0]) + 1
            return number, number

        panels_gallery.select(guarded(pick_panel), outputs=[candidate_panel, redraw_panel],
                              api_visibility="private")

        def pick_candidate(evt: gr.SelectData):
            return (evt.index if isinstance(evt.index, int) else evt.index[0]) + 1

        candidates_gallery.select(guarded(pick_candidate), outputs=[candidate_number],
                                  api_visibility="private")

        def use_candidate(state, number, candidate):
            studio.choose(state, number, candidate)
            comic = state.comic
            return (studio.panel_gallery(state), studio.candidates(state, number), comic.pages,
                    comic.files, f"Panel {int(number)} now shows candidate {int(candidate)}.",
                    studio.panel_notes(state), state)

        candidate_use.click(guarded(use_candidate), inputs=[session, candidate_panel, candidate_number],
                            outputs=[panels_gallery, candidates_gallery, pages_gallery, downloads,
                                     generate_status, panel_notes, session],
                            api_name="choose_candidate")

        def redraw(state, rows, number, new_seed):
            table, used = studio.redraw(state, rows, number, new_seed)
            comic = state.comic
            return (studio.panel_gallery(state), comic.pages, comic.files, table,
                    f"Redrew panel {int(number)} with seed {used}.", studio.panel_notes(state), state)

        redraw_button.click(gpu(guarded(redraw)),
                            inputs=[session, panels_table, redraw_panel, redraw_seed],
                            outputs=[panels_gallery, pages_gallery, downloads, panels_table,
                                     generate_status, panel_notes, session],
                            api_name="redraw", concurrency_id="gpu", concurrency_limit=1)

        def open_project(state, path):
            restored = studio.open_project(state, path)
            warn_all(restored.warnings)
            s = restored.settings
            return (restored.rows, restored.info, restored.info, *cast_view(state),
                    s.style, list(s.keywords), s.negative_prompt, s.seed, s.randomize, s.steps,
                    s.guidance, s.width, s.height, s.candidates, s.title,
                    [], [], None, [], "", state)

        project_open.click(guarded(open_project), inputs=[session, project_file],
                           outputs=[panels_table, project_info, story_info, cast_list, cast_gallery,
                                    cast_choice, *setting_inputs, panels_gallery, pages_gallery,
                                    downloads, candidates_gallery, panel_notes, session],
                           api_name="open_project")
    return demo


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = resolve_config(args)
        if args.check:
            check_models(config)
            return 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - model loading errors become one line
        from pipelines.loading import ModelUnavailable

        if isinstance(exc, ModelUnavailable):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
    from pipelines.studio import Studio

    print(f"loading the '{config.name}' models ...", file=sys.stderr, flush=True)
    studio = Studio.create(config)  # a loading failure is shown in the page, not raised
    demo = build_demo(studio)
    demo.queue(default_concurrency_limit=None)
    try:
        demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                    allowed_paths=[str(studio.export_root)])
    finally:
        studio.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
