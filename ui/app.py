"""The page: header, per-browser state and the four steps (see docs/APP.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from session import Session
from ui import characters, comic, story, style
from ui.visitor_files import record_deliveries
from ui.wiring import OTHER_EVENTS, POLL_SECONDS, Shared, wire_sign_in

#: How often a page polls the model status while the models load (seconds).
LOAD_POLL_SECONDS = 2.0

if TYPE_CHECKING:  # pragma: no cover
    from session import Studio


#: Page styles (passed to ``launch``): whole names under gallery thumbnails, framed panel cards.
CSS = """
/* thumbnails with their caption UNDER the picture (never over a face), whole names */
#library_gallery .thumbnail-item, #cast_gallery .thumbnail-item,
#my_comics_gallery .thumbnail-item, .candidate-strip .thumbnail-item {
  aspect-ratio: auto; height: auto; display: flex; flex-direction: column;
}
#library_gallery .thumbnail-item img, #cast_gallery .thumbnail-item img,
#my_comics_gallery .thumbnail-item img, .candidate-strip .thumbnail-item img {
  aspect-ratio: 1 / 1; height: auto; flex: none;
}
#library_gallery .caption-label, #cast_gallery .caption-label,
#my_comics_gallery .caption-label, .candidate-strip .caption-label {
  position: static; max-width: 100%; white-space: normal; overflow: visible;
  text-overflow: clip; line-height: 1.2; border: none; border-radius: 0; text-align: center;
  opacity: 1;
}
#library_gallery .grid-container, #cast_gallery .grid-container,
#my_comics_gallery .grid-container, .candidate-strip .grid-container {
  grid-template-rows: none; grid-auto-rows: auto;
}
/* no fixed box: the library, cast and candidate strips grow; My comics scrolls past 560 px */
#library_gallery .grid-wrap, #cast_gallery .grid-wrap, .candidate-strip .grid-wrap {
  min-height: 0 !important; max-height: none !important; height: auto !important;
}
#my_comics_gallery .grid-wrap {
  min-height: 0 !important; max-height: 560px !important; height: auto !important;
}
/* the chosen candidate: a thick accent ring besides its "✓ N in the comic" caption */
.candidate-strip .thumbnail-item.selected { box-shadow: inset 0 0 0 3px var(--color-accent); }
.panel-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 6px; }
.panel-card [id$="_image"] img { width: 100%; height: 100%; object-fit: contain; }
"""


def build_demo(studio: "Studio") -> gr.Blocks:
    """The Blocks app for ``studio``: every control has an ``elem_id``, every event an ``api_name``;
    Gradio's cache is swept by ``delete_cache`` (see docs/APP.md, "What is stored"). The queue is
    configured: model events in the concurrency groups of :mod:`ui.wiring`, every other event
    limited to ``OTHER_EVENTS`` at once (docs/APP.md, "Concurrency")."""
    from configs import load_limits

    config = studio.config
    limits = load_limits()
    # the browser's stored values are encrypted with a secret kept in the database, so a
    # restarted server still reads them (gradio's default secret is new on every start)
    secret = studio.store.secret("browser_state")
    # delete_cache: uploads and served copies older than upload_max_age_s go every upload_sweep_s,
    # and all of them when the server stops (configs/limits.yaml)
    with gr.Blocks(title="Comic Identity",
                   delete_cache=(limits.upload_sweep_s, limits.upload_max_age_s)) as demo:
        # a plain function, not the bound method: gradio deep-copies component props per page
        # load, and copying a bound method copies its object (the studio, with the models)
        shared = Shared(
            session=gr.State(Session(), delete_callback=lambda state: studio.forget(state)),
            owner_key=gr.BrowserState("", storage_key="comic_identity_owner", secret=secret),
            jobs=gr.BrowserState([], storage_key="comic_identity_jobs", secret=secret),
            finished_seen=gr.State([]),
            shown_names=gr.State([]),
            timer=gr.Timer(POLL_SECONDS, active=False))

        gr.Markdown("# Comic Identity\nOne photo per character, a story, a style: an "
                    "identity-preserving comic. Work through the four steps from left to right. "
                    f"Preset **{config.name}**.", elem_id="header")
        status = gr.Markdown(studio.load_status(), elem_id="load_error",
                             visible=bool(studio.load_status()))
        if studio.login:  # multi-user on a Space: identities and comics belong to the HF login
            gr.LoginButton(elem_id="login")

        with gr.Tabs(elem_id="steps"):
            cast_step = characters.build(studio)
            story_step = story.build(studio)
            style_step = style.build(studio)
            comic_step = comic.build(studio)

        signed_in = wire_sign_in(studio, demo, shared)
        characters.wire(studio, signed_in, shared, cast_step)
        story.wire(studio, shared, story_step, cast_step)
        comic.wire(studio, shared, comic_step, cast_step, story_step, style_step,
                   signed_in=signed_in)
        wire_load_status(studio, demo, status)
    demo.queue(default_concurrency_limit=OTHER_EVENTS)
    if studio.visitor_files is not None:  # multi-user: a visitor's files go to that visitor only
        record_deliveries(demo, studio.visitor_files)
    return demo


def wire_load_status(studio: "Studio", demo: gr.Blocks, status: gr.Markdown) -> None:
    """Keep the header's model status true: set on every page load, then polled every
    ``LOAD_POLL_SECONDS`` while the models are loading (the timer stops once they are not)."""
    timer = gr.Timer(LOAD_POLL_SECONDS, active=studio.loading)

    def refresh():
        text = studio.load_status()
        return gr.Markdown(text, visible=bool(text)), gr.Timer(active=studio.loading)

    demo.load(refresh, outputs=[status, timer], show_progress="hidden", api_visibility="private")
    timer.tick(refresh, outputs=[status, timer], show_progress="hidden", api_visibility="private")
