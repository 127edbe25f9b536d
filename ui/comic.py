"""Step 4 · Comic: My comics (saved comics, at the top), generate, pick candidates, redraw one
panel, download, open a saved project."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from ui import my_comics
from ui.wiring import (FACES, Shared, drawing, gpu, guarded, restored_view, selected_index,
                       warn_all)

if TYPE_CHECKING:  # pragma: no cover
    from ui.characters import CharactersStep
    from ui.story import StoryStep
    from ui.studio import Studio
    from ui.style import StyleStep


@dataclass
class ComicStep:
    """The components of the Comic step."""

    generate_button: Any
    generate_status: Any
    panels_gallery: Any
    panel_notes: Any
    pages_gallery: Any
    downloads: Any
    candidate_panel: Any
    candidate_show: Any
    candidates_gallery: Any
    candidate_number: Any
    candidate_use: Any
    redraw_panel: Any
    redraw_seed: Any
    redraw_button: Any
    project_file: Any
    project_open: Any
    project_info: Any
    my_comics: my_comics.MyComicsSection


def _panels_and_pages() -> dict[str, Any]:
    c: dict[str, Any] = {}
    c["generate_button"] = gr.Button("Generate", variant="primary", elem_id="generate_button")
    c["generate_status"] = gr.Markdown(elem_id="generate_status")
    c["panels_gallery"] = gr.Gallery(label="Panels (click one to pick its candidates or "
                                     "redraw it)", columns=6, format="png", height=280,
                                     fit_columns=False, elem_id="panels_gallery")
    c["panel_notes"] = gr.Markdown(elem_id="panel_notes")
    c["pages_gallery"] = gr.Gallery(label="Comic pages (click to enlarge)", columns=2,
                                    format="png", height=720, object_fit="contain",
                                    fit_columns=False, elem_id="pages_gallery")
    c["downloads"] = gr.File(label="Downloads: pages (PNG), PDF, project zip, project.json",
                             file_count="multiple", interactive=False, elem_id="downloads")
    return c


def _candidates_and_redraw() -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Row():
        with gr.Column():
            gr.Markdown("#### Candidates of a panel")
            with gr.Row():
                c["candidate_panel"] = gr.Number(label="Panel", value=1, precision=0, minimum=1,
                                                 elem_id="candidate_panel")
                c["candidate_show"] = gr.Button("Show candidates", elem_id="candidate_show")
            c["candidates_gallery"] = gr.Gallery(label="Candidates", columns=4, format="png",
                                                 height=220, fit_columns=False,
                                                 elem_id="candidates_gallery")
            with gr.Row():
                c["candidate_number"] = gr.Number(label="Candidate", value=1, precision=0,
                                                  minimum=1, elem_id="candidate_number")
                c["candidate_use"] = gr.Button("Use this candidate", elem_id="candidate_use")
        with gr.Column():
            gr.Markdown("#### Redraw one panel")
            c["redraw_panel"] = gr.Number(label="Panel", value=1, precision=0, minimum=1,
                                          elem_id="redraw_panel")
            c["redraw_seed"] = gr.Textbox(label="New seed", placeholder="blank: a random seed",
                                          elem_id="redraw_seed")
            c["redraw_button"] = gr.Button("Redraw", elem_id="redraw_button")
    with gr.Accordion("Open a saved project", open=False, elem_id="project_section"):
        c["project_file"] = gr.File(label="comic.zip or project.json", file_types=[".zip", ".json"],
                                    type="filepath", elem_id="project_file")
        c["project_open"] = gr.Button("Open project", elem_id="project_open")
        c["project_info"] = gr.Markdown(elem_id="project_info")
    return c


def build(studio: "Studio") -> ComicStep:
    """Lay out the Comic tab (call inside ``gr.Blocks``)."""
    with gr.Tab("4 · Comic", id="comic", elem_id="tab_comic"):
        saved = my_comics.build()
        top = _panels_and_pages()
        rest = _candidates_and_redraw()
    return ComicStep(**top, **rest, my_comics=saved)


def _wire_drawing(studio: "Studio", shared: Shared, step: ComicStep, story: "StoryStep",
                  style: "StyleStep") -> list:
    """Wire generate, candidates and redraw; returns the events that change the comic."""
    def generate(state, rows, style_name, keywords, negative, seed_value, randomize, steps_value,
                 guidance_value, width_value, height_value, candidates_value, title,
                 face_pass=None):
        settings = studio.settings_from(style_name, keywords, negative, seed_value, randomize,
                                        steps_value, guidance_value, width_value,
                                        height_value, candidates_value, title, face_pass)
        for update in studio.generate(state, rows, settings):
            warn_all(update.warnings)
            yield (update.gallery, update.status,
                   update.pages if update.done else gr.skip(),
                   update.files if update.done else gr.skip(), update.seed, update.notes, state)

    def gpu_seconds(state, rows, *settings):
        """GPU time to ask ZeroGPU for: the table's rows x the candidates (an estimate)."""
        from stableidentity.zero_gpu import drawing_duration_s

        try:
            panels, candidates = len(rows), int(settings[-2] or 1)
        except (TypeError, ValueError):
            panels, candidates = 1, 1
        return drawing_duration_s(panels, candidates)

    generated = step.generate_button.click(gpu(guarded(generate), duration=gpu_seconds),
                               inputs=[shared.session, story.panels_table, *style.inputs()],
                               outputs=[step.panels_gallery, step.generate_status,
                                        step.pages_gallery, step.downloads, style.seed,
                                        step.panel_notes, shared.session],
                               api_name="generate", **drawing(studio.zero_gpu is not None))

    def show_candidates(state, number):
        return studio.candidates(state, number)

    step.candidate_show.click(guarded(show_candidates),
                              inputs=[shared.session, step.candidate_panel],
                              outputs=[step.candidates_gallery], api_name="candidates")

    def pick_panel(evt: gr.SelectData):
        number = selected_index(evt) + 1
        return number, number

    step.panels_gallery.select(guarded(pick_panel),
                               outputs=[step.candidate_panel, step.redraw_panel],
                               api_visibility="private")

    def pick_candidate(evt: gr.SelectData):
        return selected_index(evt) + 1

    step.candidates_gallery.select(guarded(pick_candidate), outputs=[step.candidate_number],
                                   api_visibility="private")

    def use_candidate(state, number, candidate):
        studio.choose(state, number, candidate)
        comic = state.comic
        return (studio.panel_gallery(state), studio.candidates(state, number), comic.page_files,
                comic.files, f"Panel {int(number)} now shows candidate {int(candidate)}.",
                studio.panel_notes(state), state)

    chosen = step.candidate_use.click(guarded(use_candidate),
                             inputs=[shared.session, step.candidate_panel, step.candidate_number],
                             outputs=[step.panels_gallery, step.candidates_gallery,
                                      step.pages_gallery, step.downloads, step.generate_status,
                                      step.panel_notes, shared.session],
                             api_name="choose_candidate", **FACES)

    def redraw(state, rows, number, new_seed):
        table, used = studio.redraw(state, rows, number, new_seed)
        comic = state.comic
        return (studio.panel_gallery(state), comic.page_files, comic.files, table,
                f"Redrew panel {int(number)} with seed {used}.", studio.panel_notes(state), state)

    redrawn = step.redraw_button.click(gpu(guarded(redraw)),
                             inputs=[shared.session, story.panels_table, step.redraw_panel,
                                     step.redraw_seed],
                             outputs=[step.panels_gallery, step.pages_gallery, step.downloads,
                                      story.panels_table, step.generate_status, step.panel_notes,
                                      shared.session],
                             api_name="redraw", **drawing(studio.zero_gpu is not None))
    return [generated, chosen, redrawn]


def _wire_project(studio: "Studio", shared: Shared, step: ComicStep, characters: "CharactersStep",
                  story: "StoryStep", style: "StyleStep") -> None:
    def open_project(state, path):
        restored = studio.open_project(state, path)
        warn_all(restored.warnings)
        return (*restored_view(studio, state, restored), [], [], None, [], "", state)

    step.project_open.click(guarded(open_project), inputs=[shared.session, step.project_file],
                            outputs=[story.panels_table, step.project_info, story.story_info,
                                     *characters.cast_outputs(), *style.inputs(),
                                     step.panels_gallery, step.pages_gallery, step.downloads,
                                     step.candidates_gallery, step.panel_notes, shared.session],
                            api_name="open_project")


def wire(studio: "Studio", shared: Shared, step: ComicStep, characters: "CharactersStep",
         story: "StoryStep", style: "StyleStep", signed_in: Any = None) -> None:
    """Connect the Comic step's events (call inside ``gr.Blocks``, after every ``build``);
    ``signed_in``: the page-load event that set the session's owner (lists My comics)."""
    drawn = _wire_drawing(studio, shared, step, story, style)
    _wire_project(studio, shared, step, characters, story, style)
    my_comics.wire(studio, shared, step.my_comics, step, characters, story, style,
                   signed_in=signed_in, drawn=drawn)
