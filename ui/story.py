"""Step 2 · Story: parse the story into the editable panel table; row controls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from ui.wiring import PARSING, Shared, cast_view, on, warn_all

if TYPE_CHECKING:  # pragma: no cover
    from session import Studio
    from ui.characters import CharactersStep


@dataclass
class StoryStep:
    """The components of the Story step."""

    story_text: Any
    story_parse: Any
    story_info: Any
    story_add: Any
    addable: Any
    panels_table: Any
    panel_row: Any
    panel_up: Any
    panel_down: Any
    panel_remove: Any
    panel_add: Any
    story_message: Any


def build(studio: "Studio") -> StoryStep:
    """Lay out the Story tab (call inside ``gr.Blocks``)."""
    from pipelines.panel_table import HEADERS

    with gr.Tab("2 · Story", id="story", elem_id="tab_story"):
        story_text = gr.Textbox(label="Story", lines=6, elem_id="story_text",
                                placeholder="Write the story with the characters' full "
                                            "names, e.g. 'Ada Lovelace met Alan Turing in "
                                            "a library. She showed him her notes.'")
        story_parse = gr.Button("Process Text", variant="primary", elem_id="story_parse")
        story_info = gr.Markdown(elem_id="story_info")
        story_add = gr.Button("Add to the cast", visible=False, elem_id="story_add_cast")
        addable = gr.State([])
        gr.Markdown("One row per panel: the sentence, its characters as comma-separated "
                    "full names (at most "
                    f"{studio.config.generation.max_identities_per_panel}), a seed (blank: "
                    "the comic's seed + the row's index) and where each character stands, in "
                    "the characters' order: `left`, `center`, `right` or a box `x0,y0,x1,y1` "
                    "(0-1), separated by `;` (blank: by the order they are named). Edit the "
                    "cells directly.")
        panels_table = gr.Dataframe(
            headers=HEADERS, datatype=["str"] * len(HEADERS), type="array",
            column_count=len(HEADERS), interactive=True, wrap=True, show_row_numbers=True,
            column_widths=["56%", "22%", "8%", "14%"], label="Panels", elem_id="panels_table")
        with gr.Row():
            panel_row = gr.Number(label="Row", value=1, precision=0,
                                  elem_id="panel_row", scale=1)
            panel_up = gr.Button("Move up", elem_id="panel_up")
            panel_down = gr.Button("Move down", elem_id="panel_down")
            panel_remove = gr.Button("Remove row", elem_id="panel_remove")
            panel_add = gr.Button("Add row after", elem_id="panel_add")
        story_message = gr.Markdown(elem_id="story_message")
    return StoryStep(story_text, story_parse, story_info, story_add, addable, panels_table,
                     panel_row, panel_up, panel_down, panel_remove, panel_add, story_message)


def _add_button(names):
    """The one-click "add from library" button: shown while the story names library identities
    outside the cast."""
    if not names:
        return gr.Button(visible=False)
    return gr.Button(f"Add {' and '.join(names)} to the cast", visible=True)


def wire(studio: "Studio", shared: Shared, step: StoryStep, characters: "CharactersStep") -> None:
    """Connect the Story step's events (call inside ``gr.Blocks``, after every ``build``)."""
    from pipelines.panel_table import add_row, move_row, remove_row

    def parse(state, story):
        outcome = studio.parse(state, story)
        warn_all(outcome.warnings)
        return outcome.rows, outcome.info, list(outcome.addable), state

    on(step.story_parse.click, parse, inputs=[shared.session, step.story_text],
       outputs=[step.panels_table, step.story_info, step.addable, shared.session],
       line=step.story_info, api_name="parse", **PARSING).then(
        _add_button, inputs=[step.addable], outputs=[step.story_add], api_visibility="private")

    def add_and_parse(state, names, story):
        for name in names or []:
            studio.add_to_cast(state, name)
        outcome = studio.parse(state, story)
        return (outcome.rows, outcome.info, list(outcome.addable), *cast_view(studio, state),
                state)

    on(step.story_add.click, add_and_parse, inputs=[shared.session, step.addable, step.story_text],
       outputs=[step.panels_table, step.story_info, step.addable, *characters.cast_outputs(),
                shared.session],
       line=step.story_info, api_name="story_add_cast", **PARSING).then(
        _add_button, inputs=[step.addable], outputs=[step.story_add], api_visibility="private")

    def row_up(rows, row):
        table, number = move_row(rows, row, -1)
        return table, number

    def row_down(rows, row):
        table, number = move_row(rows, row, +1)
        return table, number

    table, line = step.panels_table, step.story_message
    on(step.panel_up.click, row_up, inputs=[table, step.panel_row],
       outputs=[table, step.panel_row], line=line, api_name="panel_up")
    on(step.panel_down.click, row_down, inputs=[table, step.panel_row],
       outputs=[table, step.panel_row], line=line, api_name="panel_down")
    on(step.panel_remove.click, remove_row, inputs=[table, step.panel_row],
       outputs=[table], line=line, api_name="panel_remove")
    on(step.panel_add.click, add_row, inputs=[table, step.panel_row],
       outputs=[table], line=line, api_name="panel_add")
