"""Step 2 · Story: parse the story into the editable panel table; row controls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from ui.wiring import PARSING, Shared, guarded, warn_all

if TYPE_CHECKING:  # pragma: no cover
    from ui.studio import Studio


@dataclass
class StoryStep:
    """The components of the Story step."""

    story_text: Any
    story_parse: Any
    story_info: Any
    panels_table: Any
    panel_row: Any
    panel_up: Any
    panel_down: Any
    panel_remove: Any
    panel_add: Any


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
            panel_row = gr.Number(label="Row", value=1, precision=0, minimum=1,
                                  elem_id="panel_row", scale=1)
            panel_up = gr.Button("Move up", elem_id="panel_up")
            panel_down = gr.Button("Move down", elem_id="panel_down")
            panel_remove = gr.Button("Remove row", elem_id="panel_remove")
            panel_add = gr.Button("Add row after", elem_id="panel_add")
    return StoryStep(story_text, story_parse, story_info, panels_table, panel_row, panel_up,
                     panel_down, panel_remove, panel_add)


def wire(studio: "Studio", shared: Shared, step: StoryStep) -> None:
    """Connect the Story step's events (call inside ``gr.Blocks``, after every ``build``)."""
    from pipelines.panel_table import add_row, move_row, remove_row

    def parse(state, story):
        outcome = studio.parse(state, story)
        warn_all(outcome.warnings)
        return outcome.rows, outcome.info

    step.story_parse.click(guarded(parse), inputs=[shared.session, step.story_text],
                           outputs=[step.panels_table, step.story_info], api_name="parse",
                           **PARSING)

    def row_up(rows, row):
        table, number = move_row(rows, row, -1)
        return table, number

    def row_down(rows, row):
        table, number = move_row(rows, row, +1)
        return table, number

    table = step.panels_table
    step.panel_up.click(guarded(row_up), inputs=[table, step.panel_row],
                        outputs=[table, step.panel_row], api_name="panel_up")
    step.panel_down.click(guarded(row_down), inputs=[table, step.panel_row],
                          outputs=[table, step.panel_row], api_name="panel_down")
    step.panel_remove.click(guarded(remove_row), inputs=[table, step.panel_row],
                            outputs=[table], api_name="panel_remove")
    step.panel_add.click(guarded(add_row), inputs=[table, step.panel_row],
                         outputs=[table], api_name="panel_add")
