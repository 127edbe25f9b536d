"""The page: header, per-browser state and the four steps (see docs/APP.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from ui import characters, comic, story, style
from ui.studio import Session
from ui.wiring import POLL_SECONDS, Shared

if TYPE_CHECKING:  # pragma: no cover
    from ui.studio import Studio


def build_demo(studio: "Studio") -> gr.Blocks:
    """The Blocks app for ``studio``: every control has an ``elem_id``, every event an ``api_name``."""
    config = studio.config
    with gr.Blocks(title="Comic Identity") as demo:
        # a plain function, not the bound method: gradio deep-copies component props per page
        # load, and copying a bound method copies its object (the studio, with the models)
        shared = Shared(
            session=gr.State(Session(), delete_callback=lambda state: studio.forget(state)),
            jobs=gr.BrowserState([], storage_key="comic_identity_jobs"),
            finished_seen=gr.State([]),
            shown_names=gr.State([]),
            timer=gr.Timer(POLL_SECONDS, active=False))

        gr.Markdown("# Comic Identity\nOne photo per character, a story, a style: an "
                    "identity-preserving comic. Work through the four steps from left to right. "
                    f"Preset **{config.name}**.", elem_id="header")
        gr.Markdown(f"**The models could not be loaded:** {studio.load_error}" if studio.load_error
                    else "", elem_id="load_error", visible=bool(studio.load_error))

        with gr.Tabs(elem_id="steps"):
            cast_step = characters.build(studio)
            story_step = story.build(studio)
            style_step = style.build(studio)
            comic_step = comic.build(studio)

        characters.wire(studio, demo, shared, cast_step)
        story.wire(studio, shared, story_step)
        comic.wire(studio, shared, comic_step, cast_step, story_step, style_step)
    return demo
