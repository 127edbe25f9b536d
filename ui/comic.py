"""Step 4 · Comic: My comics and opening a saved comic file (at the top), Generate, then one
card per panel (picture, sentence, face score, candidates, redraw), the page preview and the
downloads."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from ui import my_comics
from ui.wiring import (
    FACES,
    Shared,
    drawing,
    on,
    restored_view,
    selected_index,
    warn_all,
)

if TYPE_CHECKING:  # pragma: no cover
    from session import Studio
    from ui.characters import CharactersStep
    from ui.story import StoryStep
    from ui.style import StyleStep

#: Narrowest a panel card gets (pixels); cards wrap onto the next line below that.
CARD_MIN_WIDTH = 300


@dataclass
class PanelSlot:
    """One pre-built panel card (hidden while the comic has fewer panels)."""

    box: Any
    image: Any
    text: Any
    candidates: Any
    seed: Any
    redraw: Any
    note: Any

    def outputs(self) -> list:
        return [self.box, self.image, self.text, self.candidates]


@dataclass
class ComicStep:
    """The components of the Comic step.

    The ``candidate_*``/``redraw_*`` number fields, ``panels_gallery``, ``panel_notes`` and
    ``downloads`` are hidden: they keep the ``candidates``, ``choose_candidate``, ``redraw`` and
    ``generate`` API endpoints as they were; people use the cards.
    """

    project_file: Any
    project_open: Any
    project_info: Any
    generate_button: Any
    save_as_new: Any
    generate_status: Any
    slots: list[PanelSlot]
    pages_gallery: Any
    downloads_html: Any
    version: Any
    panels_gallery: Any
    panel_notes: Any
    downloads: Any
    candidate_panel: Any
    candidate_show: Any
    candidates_gallery: Any
    candidate_number: Any
    candidate_use: Any
    redraw_panel: Any
    redraw_seed: Any
    redraw_button: Any
    my_comics: my_comics.MyComicsSection


def _slot(number: int) -> PanelSlot:
    with gr.Column(visible=False, elem_id=f"card_{number}", elem_classes=["panel-card"],
                   min_width=CARD_MIN_WIDTH) as box:
        image = gr.Image(label=f"Panel {number}", interactive=False, height=300, format="png",
                         elem_id=f"card_{number}_image")
        text = gr.Markdown(elem_id=f"card_{number}_text")  # sentence, face score, seed
        # whole pictures (contain), the caption under each; the chosen one is selected and
        # captioned "✓ N in the comic"; thumbnails are buttons (Tab, then Enter chooses)
        candidates = gr.Gallery(label="Candidates (click one to use it)", show_label=False,
                                columns=4, height="auto", allow_preview=False,
                                object_fit="contain", format="png", visible=False,
                                elem_id=f"card_{number}_candidates",
                                elem_classes=["candidate-strip"])
        with gr.Row(equal_height=True):
            seed = gr.Textbox(placeholder="seed (blank: random)", show_label=False, scale=2,
                              container=False, elem_id=f"card_{number}_seed")
            redraw = gr.Button("Redraw", size="sm", scale=1, elem_id=f"card_{number}_redraw")
        note = gr.Markdown(elem_id=f"card_{number}_note")  # this card's feedback line
    return PanelSlot(box, image, text, candidates, seed, redraw, note)


def _api_only() -> dict[str, Any]:
    """Hidden components that keep the original API endpoints' inputs and outputs."""
    c: dict[str, Any] = {}
    with gr.Column(visible=False):
        c["panels_gallery"] = gr.Gallery(format="png", elem_id="panels_gallery")
        c["panel_notes"] = gr.Markdown(elem_id="panel_notes")
        c["downloads"] = gr.File(file_count="multiple", interactive=False, elem_id="downloads")
        c["candidate_panel"] = gr.Number(value=1, precision=0, elem_id="candidate_panel")
        c["candidate_show"] = gr.Button(elem_id="candidate_show")
        c["candidates_gallery"] = gr.Gallery(format="png", elem_id="candidates_gallery")
        c["candidate_number"] = gr.Number(value=1, precision=0, elem_id="candidate_number")
        c["candidate_use"] = gr.Button(elem_id="candidate_use")
        c["redraw_panel"] = gr.Number(value=1, precision=0, elem_id="redraw_panel")
        c["redraw_seed"] = gr.Textbox(elem_id="redraw_seed")
        c["redraw_button"] = gr.Button(elem_id="redraw_button")
    return c


def build(studio: "Studio") -> ComicStep:
    """Lay out the Comic tab (call inside ``gr.Blocks``)."""
    from configs import load_limits

    count = load_limits().panels  # one card per panel a comic may have
    with gr.Tab("4 · Comic", id="comic", elem_id="tab_comic"):
        saved = my_comics.build()
        with gr.Row(equal_height=True, elem_id="project_section"):
            project_file = gr.File(label="Open a saved comic (comic.zip or project.json)",
                                   file_types=[".zip", ".json"], type="filepath", height=120,
                                   elem_id="project_file", scale=3)
            project_open = gr.Button("Open", elem_id="project_open", scale=1)
        project_info = gr.Markdown(elem_id="project_info")
        with gr.Row(equal_height=True):
            generate_button = gr.Button("Generate", variant="primary", scale=3,
                                        elem_id="generate_button")
            save_as_new = gr.Checkbox(label="Save as a new comic", value=False, scale=1,
                                      info="unticked: Generate updates the comic opened or drawn "
                                           "last in My comics", elem_id="save_as_new")
        generate_status = gr.Markdown(elem_id="generate_status")
        with gr.Row(equal_height=False, elem_id="panel_cards"):  # cards wrap: min_width each
            slots = [_slot(n + 1) for n in range(count)]
        pages_gallery = gr.Gallery(label="Page preview (click to enlarge)", columns=2, format="png",
                                   height=640, object_fit="contain", fit_columns=False,
                                   elem_id="pages_gallery")
        downloads_html = gr.HTML(elem_id="downloads_list")
        version = gr.State(0)
        hidden = _api_only()
    return ComicStep(project_file=project_file, project_open=project_open,
                     project_info=project_info, generate_button=generate_button,
                     save_as_new=save_as_new,
                     generate_status=generate_status, slots=slots, pages_gallery=pages_gallery,
                     downloads_html=downloads_html, version=version, my_comics=saved, **hidden)


def _download_links(files: list[str]) -> str:
    """Plain download links for the comic's files (no remove buttons)."""
    if not files:
        return ""
    labels = {".png": "page (PNG)", ".pdf": "the whole comic (PDF)",
              ".cbz": "for comic readers (CBZ with ComicInfo.xml)",
              ".zip": "project zip (re-open it here later)", ".json": "project.json"}
    items = []
    for path in files:
        name = Path(path).name
        label = labels.get(Path(path).suffix.lower(), "")
        items.append(f'<li><a href="/gradio_api/file={html.escape(path)}" download="{html.escape(name)}">'
                     f'{html.escape(name)}</a> <span style="opacity:.7">{label}</span></li>')
    return "<div><b>Downloads</b><ul style='margin-top:4px'>" + "".join(items) + "</ul></div>"


def _render(studio: "Studio", step: ComicStep):
    def render(state):
        cards = studio.cards(state)
        values: list[Any] = []
        for i, _slot_ in enumerate(step.slots):
            if i < len(cards):
                card = cards[i]
                values += [gr.Column(visible=True), card.image, card.text,
                           gr.Gallery(value=card.candidates, visible=bool(card.candidates),
                                      selected_index=card.chosen if card.candidates else None)]
            else:
                values += [gr.Column(visible=False), None, "", gr.Gallery(value=[], visible=False)]
        comic = state.comic
        files = comic.files if comic is not None and state.drawing is None else []
        return (*values, _download_links(files))
    return render


def _wire_cards(studio: "Studio", shared: Shared, step: ComicStep, story: "StoryStep") -> list:
    """Wire the cards (rendering, candidate strips, Redraw); returns the events that change the
    comic."""
    outputs = [o for s in step.slots for o in s.outputs()] + [step.downloads_html]
    step.version.change(_render(studio, step), inputs=[shared.session], outputs=outputs,
                        show_progress="hidden", api_visibility="private")

    events = []
    for number, slot in enumerate(step.slots, start=1):
        events.append(on(slot.candidates.select, _chooser(studio, number), inputs=[shared.session],
           outputs=[step.pages_gallery, step.downloads, slot.note, step.version,
                    shared.session], line=slot.note, api_visibility="private", **FACES))
        events.append(on(slot.redraw.click, _redrawer(studio, number),
           inputs=[shared.session, story.panels_table, slot.seed],
           outputs=[step.pages_gallery, step.downloads, story.panels_table, slot.note,
                    step.version, shared.session], line=slot.note, on_gpu=True,
           api_visibility="private", **drawing(studio.zero_gpu is not None)))
    return events


def _chooser(studio: "Studio", number: int):
    """The handler of panel ``number``'s candidate strip: use the clicked candidate."""
    def choose(state, evt: gr.SelectData):
        candidate = selected_index(evt) + 1
        studio.choose(state, number, candidate)
        return (state.comic.page_files, state.comic.files,
                f"✓ Now shows candidate {candidate}; the pages and downloads are updated.",
                time.time_ns(), state)
    return choose


def _redrawer(studio: "Studio", number: int):
    """The handler of panel ``number``'s Redraw button (seed typed on the card, blank: random)."""
    def redraw(state, rows, new_seed):
        table, used = studio.redraw(state, rows, number, new_seed)
        return (state.comic.page_files, state.comic.files, table,
                f"✓ Redrawn with seed {used}; the pages and downloads are updated.",
                time.time_ns(), state)
    return redraw


def _wire_generate(studio: "Studio", shared: Shared, step: ComicStep, story: "StoryStep",
                   style: "StyleStep") -> Any:
    """Wire Generate; returns its event."""
    def generate(state, rows, style_name, keywords, negative, seed_value, randomize, steps_value,
                 guidance_value, width_value, height_value, candidates_value, title,
                 face_pass=None, loras_value=None, save_as_new=False):
        settings = studio.settings_from(style_name, keywords, negative, seed_value, randomize,
                                        steps_value, guidance_value, width_value,
                                        height_value, candidates_value, title, face_pass,
                                        loras_value)
        for update in studio.generate(state, rows, settings, save_as_new=bool(save_as_new)):
            warn_all(update.warnings)
            yield (update.gallery, update.status,
                   update.pages if update.done else gr.skip(),
                   update.files if update.done else gr.skip(), update.seed, update.notes,
                   time.time_ns(), state)

    def gpu_seconds(state, rows, *settings):
        """GPU time to ask ZeroGPU for: the table's rows x the candidates at the chosen steps,
        size and face pass, from the measured speeds (``serving.gpu_speeds``)."""
        from serving.zero_gpu import drawing_duration_s

        try:  # in style.inputs() order: style, keywords, negative, seed, randomize, steps,
            # guidance, width, height, candidates, title, face pass
            panels, candidates = len(rows), int(settings[9] or 1)
        except (TypeError, ValueError):
            panels, candidates = 1, 1
        try:
            steps, pixels = int(settings[5]), int(settings[7]) * int(settings[8])
        except (TypeError, ValueError, IndexError):
            steps, pixels = 30, 1024 * 1024  # what the speeds were measured on
        face_pass = bool(settings[11]) if len(settings) > 11 and settings[11] is not None else True
        return drawing_duration_s(panels, candidates, face_pass=face_pass, steps=steps, pixels=pixels)

    return on(step.generate_button.click, generate,
       inputs=[shared.session, story.panels_table, *style.inputs(), step.save_as_new],
       outputs=[step.panels_gallery, step.generate_status, step.pages_gallery, step.downloads,
                style.seed, step.panel_notes, step.version, shared.session],
       line=step.generate_status, on_gpu=True, gpu_duration=gpu_seconds, api_name="generate",
       **drawing(studio.zero_gpu is not None))


def _wire_api(studio: "Studio", shared: Shared, step: ComicStep, story: "StoryStep") -> list:
    """The number-based endpoints (``candidates``, ``choose_candidate``, ``redraw``); returns
    the events that change the comic."""
    def show_candidates(state, number):
        return studio.candidates(state, number)

    on(step.candidate_show.click, show_candidates, inputs=[shared.session, step.candidate_panel],
       outputs=[step.candidates_gallery], line=step.generate_status, api_name="candidates")

    def use_candidate(state, number, candidate):
        studio.choose(state, number, candidate)
        comic = state.comic
        return (studio.panel_gallery(state), studio.candidates(state, number), comic.page_files,
                comic.files, f"Panel {int(number)} now shows candidate {int(candidate)}.",
                studio.panel_notes(state), time.time_ns(), state)

    chosen = on(step.candidate_use.click, use_candidate,
       inputs=[shared.session, step.candidate_panel, step.candidate_number],
       outputs=[step.panels_gallery, step.candidates_gallery, step.pages_gallery, step.downloads,
                step.generate_status, step.panel_notes, step.version, shared.session],
       line=step.generate_status, api_name="choose_candidate", **FACES)

    def redraw(state, rows, number, new_seed):
        table, used = studio.redraw(state, rows, number, new_seed)
        comic = state.comic
        return (studio.panel_gallery(state), comic.page_files, comic.files, table,
                f"Redrew panel {int(number)} with seed {used}.", studio.panel_notes(state),
                time.time_ns(), state)

    redrawn = on(step.redraw_button.click, redraw,
       inputs=[shared.session, story.panels_table, step.redraw_panel, step.redraw_seed],
       outputs=[step.panels_gallery, step.pages_gallery, step.downloads, story.panels_table,
                step.generate_status, step.panel_notes, step.version, shared.session],
       line=step.generate_status, on_gpu=True, api_name="redraw",
       **drawing(studio.zero_gpu is not None))
    return [chosen, redrawn]


def _wire_project(studio: "Studio", shared: Shared, step: ComicStep, characters: "CharactersStep",
                  story: "StoryStep", style: "StyleStep") -> None:
    def open_project(state, path):
        restored = studio.open_project(state, path)
        warn_all(restored.warnings)
        comic = state.comic
        pages, files = (comic.page_files or comic.pages, comic.files) if comic is not None \
            else ([], [])
        story_text = restored.story if restored.story else gr.skip()
        return (*restored_view(studio, state, restored), studio.panel_gallery(state), pages,
                files, [], studio.panel_notes(state), story_text, time.time_ns(), state)

    outputs = [story.panels_table, step.project_info, story.story_info, *characters.cast_outputs(),
               *style.inputs(), step.panels_gallery, step.pages_gallery, step.downloads,
               step.candidates_gallery, step.panel_notes, story.story_text, step.version,
               shared.session]
    on(step.project_open.click, open_project, inputs=[shared.session, step.project_file],
       outputs=outputs, line=step.project_info, api_name="open_project", **FACES)
    on(step.project_file.upload, open_project, inputs=[shared.session, step.project_file],
       outputs=outputs, line=step.project_info, api_visibility="private", **FACES)


def wire(studio: "Studio", shared: Shared, step: ComicStep, characters: "CharactersStep",
         story: "StoryStep", style: "StyleStep", signed_in: Any = None) -> None:
    """Connect the Comic step's events (call inside ``gr.Blocks``, after every ``build``);
    ``signed_in``: the page-load event that set the session's owner (lists My comics)."""
    drawn = [_wire_generate(studio, shared, step, story, style),
             *_wire_api(studio, shared, step, story), *_wire_cards(studio, shared, step, story)]
    _wire_project(studio, shared, step, characters, story, style)
    my_comics.wire(studio, shared, step.my_comics, step, characters, story, style,
                   signed_in=signed_in, drawn=drawn)
