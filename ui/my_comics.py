"""My comics, at the top of the Comic step: the owner's saved comics, reopened with one click.

Every drawn comic is saved for its owner (:meth:`session.saved.SavedComicSteps._keep`, stored by
:class:`serving.saved_comics.ComicShelf`); this section lists them (first page, title, date),
opens one when its thumbnail is clicked (pages and downloads shown at once, panels, cast and
settings restored) and deletes one. API: ``my_comics``, ``open_comic`` (comic id),
``delete_comic`` (comic id).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from ui.wiring import Shared, guarded, restored_view, selected_index, warn_all

if TYPE_CHECKING:  # pragma: no cover
    from ui.characters import CharactersStep
    from ui.comic import ComicStep
    from ui.story import StoryStep
    from session import Session, Studio
    from ui.style import StyleStep


@dataclass
class MyComicsSection:
    """The components of the My comics section (``shown``: comic ids in gallery order)."""

    summary: Any
    gallery: Any
    comic_id: Any
    refresh: Any
    delete: Any
    open: Any
    shown: Any

    def outputs(self) -> list:
        """What :func:`comics_view` fills."""
        return [self.gallery, self.summary, self.shown]


def build() -> MyComicsSection:
    """Lay out the section (call inside the Comic tab, first)."""
    with gr.Accordion("My comics", open=True, elem_id="my_comics_section"):
        summary = gr.Markdown(elem_id="my_comics_summary")
        gallery = gr.Gallery(label="Saved comics (click one to open it)", columns=6, height=200,
                             allow_preview=False, object_fit="contain", fit_columns=False,
                             interactive=False, elem_id="my_comics_gallery")
        with gr.Row():
            comic_id = gr.Textbox(label="Comic id", interactive=False, elem_id="my_comic_id",
                                  scale=3)
            refresh = gr.Button("Refresh", elem_id="my_comics_refresh", scale=1)
            delete = gr.Button("Delete this comic", variant="stop", elem_id="my_comic_delete",
                               scale=1)
        # carries the open_comic API event; a click on a thumbnail runs the same handler
        opener = gr.Button(visible=False, elem_id="my_comic_open")
    return MyComicsSection(summary=summary, gallery=gallery, comic_id=comic_id, refresh=refresh,
                           delete=delete, open=opener, shown=gr.State([]))


def comics_view(studio: "Studio", session: "Session") -> tuple:
    """Gallery items (first page, "title · date"), a summary line, the ids in gallery order."""
    comics = studio.my_comics(session)
    items = [(studio.served_picture(c.thumbnail), c.caption()) for c in comics]
    if studio.multi_user and studio.owner_of(session) is None:
        summary = "Log in with Hugging Face to keep your comics."
    elif not comics:
        summary = "No saved comics yet: every comic you draw is kept here."
    else:
        summary = f"{len(comics)} saved comic{'s' if len(comics) != 1 else ''}, newest first."
    return items, summary, [c.id for c in comics]


def wire(studio: "Studio", shared: Shared, section: MyComicsSection, comic: "ComicStep",
         characters: "CharactersStep", story: "StoryStep", style: "StyleStep",
         signed_in: Any = None, drawn: list | tuple = ()) -> None:
    """Connect the section. ``signed_in``: the page-load event that set the session's owner;
    ``drawn``: the events after which the list changes (generate, redraw, candidate swap)."""
    def list_comics(state):
        return comics_view(studio, state)

    if signed_in is not None:
        signed_in.then(guarded(list_comics), inputs=[shared.session], outputs=section.outputs(),
                       api_visibility="private")
    section.refresh.click(guarded(list_comics), inputs=[shared.session],
                          outputs=section.outputs(), api_name="my_comics")
    for event in drawn:
        event.then(guarded(list_comics), inputs=[shared.session], outputs=section.outputs(),
                   api_visibility="private")

    def open_comic(state, comic_id):
        restored, files = studio.open_saved(state, comic_id)
        warn_all(restored.warnings)
        pages = [f for f in files if f.rsplit("/", 1)[-1].startswith("page_")]
        story_text = restored.story if restored.story else gr.skip()
        return (*restored_view(studio, state, restored), studio.panel_gallery(state), pages, files,
                [], studio.panel_notes(state), restored.info, story_text, time.time_ns(), state)

    # the comic's cards are drawn again when ``comic.version`` changes
    opened = [story.panels_table, comic.project_info, story.story_info, *characters.cast_outputs(),
              *style.inputs(), comic.panels_gallery, comic.pages_gallery, comic.downloads,
              comic.candidates_gallery, comic.panel_notes, comic.generate_status,
              story.story_text, comic.version, shared.session]
    section.open.click(guarded(open_comic), inputs=[shared.session, section.comic_id],
                     outputs=opened, api_name="open_comic")

    def pick(shown, evt: gr.SelectData):
        index = selected_index(evt)
        if not shown or not 0 <= index < len(shown):
            raise gr.Error("that comic is no longer listed; press Refresh", print_exception=False)
        return shown[index]

    section.gallery.select(guarded(pick), inputs=[section.shown], outputs=[section.comic_id],
                           api_visibility="private").then(
        guarded(open_comic), inputs=[shared.session, section.comic_id], outputs=opened,
        api_visibility="private")

    def delete_comic(state, comic_id):
        title = studio.delete_saved(state, comic_id)
        gr.Info(f"Deleted {title} from My comics.")
        return (*comics_view(studio, state), "")

    section.delete.click(guarded(delete_comic), inputs=[shared.session, section.comic_id],
                         outputs=[*section.outputs(), section.comic_id], api_name="delete_comic")


__all__ = ["MyComicsSection", "build", "comics_view", "wire"]
