"""My comics, at the top of the Comic step: the owner's saved comics, reopened with one click.

Every drawn comic is saved for its owner (:meth:`session.saved.SavedComicSteps._keep`, stored by
:class:`serving.saved_comics.ComicShelf`); this section lists them (first page, title, date),
opens one when its thumbnail is clicked (pages and downloads shown at once, panels, cast and
settings restored), renames one and deletes one (after a confirmation). Every action reports in
the section's own message line (``#my_comics_message``), which stays until the next action: a
browser never gets a red "Error" marker, whatever the state (nothing selected, a comic deleted
in another tab, damaged files). API: ``my_comics``, ``open_comic`` (comic id), ``rename_comic``
(comic id, title), ``delete_comic`` (comic id; deletes at once, the browser asks first).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from ui.wiring import Shared, guarded, on, restored_view, selected_index, warn_all

if TYPE_CHECKING:  # pragma: no cover
    from session import Session, Studio
    from ui.characters import CharactersStep
    from ui.comic import ComicStep
    from ui.story import StoryStep
    from ui.style import StyleStep


@dataclass
class MyComicsSection:
    """The components of the My comics section (``shown``: comic ids in gallery order).

    ``comic_id`` is hidden (it carries the selected id to the events and the API); people see
    ``selected``, the chosen comic's title, and the section's ``message`` line.
    """

    summary: Any
    gallery: Any
    comic_id: Any
    selected: Any
    message: Any
    title: Any
    rename: Any
    refresh: Any
    delete: Any
    confirm_row: Any
    confirm_text: Any
    delete_yes: Any
    delete_no: Any
    open: Any
    delete_api: Any
    shown: Any

    def outputs(self) -> list:
        """What :func:`comics_view` fills."""
        return [self.gallery, self.summary, self.shown]


def build() -> MyComicsSection:
    """Lay out the section (call inside the Comic tab, first)."""
    with gr.Accordion("My comics", open=True, elem_id="my_comics_section"):
        summary = gr.Markdown(elem_id="my_comics_summary")
        gallery = gr.Gallery(label="Saved comics (click one to open it)", columns=6, height="auto",
                             allow_preview=False, object_fit="contain", fit_columns=False,
                             interactive=False, elem_id="my_comics_gallery")
        comic_id = gr.Textbox(visible=False, elem_id="my_comic_id")
        selected = gr.Markdown("No comic selected.", elem_id="my_comic_selected")
        with gr.Row(equal_height=True):
            title = gr.Textbox(placeholder="new title for the selected comic", show_label=False,
                               container=False, scale=3, elem_id="my_comic_title")
            rename = gr.Button("Rename", scale=1, elem_id="my_comic_rename")
            refresh = gr.Button("Refresh", elem_id="my_comics_refresh", scale=1)
            delete = gr.Button("Delete this comic", variant="stop", elem_id="my_comic_delete",
                               scale=1)
        with gr.Row(visible=False, elem_id="my_comic_confirm_row") as confirm_row:
            confirm_text = gr.Markdown(elem_id="my_comic_confirm_text")
            delete_yes = gr.Button("Yes, delete", variant="stop", elem_id="my_comic_delete_confirm")
            delete_no = gr.Button("Keep it", elem_id="my_comic_delete_cancel")
        message = gr.Markdown(elem_id="my_comics_message")
        # carries the open_comic API event; a click on a thumbnail runs the same handler
        opener = gr.Button(visible=False, elem_id="my_comic_open")
        delete_api = gr.Button(visible=False, elem_id="my_comic_delete_api")  # delete_comic API
    return MyComicsSection(summary=summary, gallery=gallery, comic_id=comic_id, selected=selected,
                           message=message, title=title, rename=rename, refresh=refresh,
                           delete=delete, confirm_row=confirm_row, confirm_text=confirm_text,
                           delete_yes=delete_yes, delete_no=delete_no, open=opener, delete_api=delete_api,
                           shown=gr.State([]))


def comics_view(studio: "Studio", session: "Session") -> tuple:
    """Gallery items (first page, "title · date · panels · cast"), a summary line, the ids in
    gallery order."""
    comics = studio.my_comics(session)
    items = [(studio.served_picture(c.thumbnail), c.caption()) for c in comics]
    if studio.multi_user and studio.owner_of(session) is None:
        summary = "Log in with Hugging Face to keep your comics."
    elif not comics:
        summary = "No saved comics yet: every comic you draw is kept here."
    else:
        summary = (f"{len(comics)} saved comic{'s' if len(comics) != 1 else ''}, newest first. "
                   "Generate again updates the comic you opened or drew last.")
    return items, summary, [c.id for c in comics]


def _selected_line(title: str) -> str:
    return f"Selected: **{title}**" if title else "No comic selected."


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
    def relist(state):
        """After a drawing: the list again, the section's old message cleared."""
        return (*comics_view(studio, state), "")

    for event in drawn:
        event.then(guarded(relist), inputs=[shared.session],
                   outputs=[*section.outputs(), section.message], api_visibility="private")

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
    # the API (a hidden button): its outputs and errors stay as they were
    section.open.click(guarded(open_comic), inputs=[shared.session, section.comic_id],
                       outputs=opened, api_name="open_comic")

    def pick(state, shown, evt: gr.SelectData):
        """Select the clicked comic; one no longer there refreshes the list instead."""
        index = selected_index(evt)
        comic_id = shown[index] if shown and 0 <= index < len(shown) else ""
        titles = {c.id: c.title or "Untitled comic" for c in studio.my_comics(state)}
        if comic_id not in titles:
            return (*comics_view(studio, state), "", _selected_line(""),
                    ("That comic is no longer in My comics (deleted in another tab?); the list "
                     "is up to date now."))
        return (gr.skip(), gr.skip(), gr.skip(), comic_id, _selected_line(titles[comic_id]), "")

    def open_picked(state, comic_id):
        if not comic_id:
            return tuple(gr.skip() for _ in range(len(opened) + 2))
        values = open_comic(state, comic_id)
        title = state.comic.title if state.comic is not None else ""
        title = title or studio.saved_title(state, comic_id)
        return (*values, title, f"Opened {title}.")

    picked = on(section.gallery.select, pick, inputs=[shared.session, section.shown],
                outputs=[*section.outputs(), section.comic_id, section.selected, section.message],
                line=section.message, api_visibility="private")
    on(picked.then, open_picked, inputs=[shared.session, section.comic_id],
       outputs=[*opened, section.title, section.message], line=section.message,
       api_visibility="private")

    def rename_comic(state, comic_id, title):
        new_title = studio.rename_saved(state, comic_id, title)
        return (*comics_view(studio, state), _selected_line(new_title),
                f"Renamed it to {new_title}.")

    on(section.rename.click, rename_comic, inputs=[shared.session, section.comic_id, section.title],
       outputs=[*section.outputs(), section.selected, section.message], line=section.message,
       api_name="rename_comic")

    def ask_delete(state, comic_id):
        title = studio.saved_title(state, comic_id)
        return (f"Delete **{title}** from My comics? Its pages and files go too.",
                gr.Row(visible=True), "")

    on(section.delete.click, ask_delete, inputs=[shared.session, section.comic_id],
       outputs=[section.confirm_text, section.confirm_row, section.message], line=section.message,
       api_visibility="private")

    def delete_comic(state, comic_id):
        title = studio.delete_saved(state, comic_id)
        return (*comics_view(studio, state), "", title)

    # the API (a hidden button): deletes at once, outputs as they were
    section.delete_api.click(guarded(lambda state, comic_id: delete_comic(state, comic_id)[:-1]),
                             inputs=[shared.session, section.comic_id],
                             outputs=[*section.outputs(), section.comic_id],
                             api_name="delete_comic")

    def confirmed(state, comic_id):
        *values, title = delete_comic(state, comic_id)
        return (*values, gr.Row(visible=False), _selected_line(""),
                f"Deleted {title} from My comics.")

    on(section.delete_yes.click, confirmed, inputs=[shared.session, section.comic_id],
       outputs=[*section.outputs(), section.comic_id, section.confirm_row, section.selected,
                section.message], line=section.message, api_visibility="private")
    section.delete_no.click(lambda: (gr.Row(visible=False), "Kept it."), None,
                            [section.confirm_row, section.message], api_visibility="private")


__all__ = ["MyComicsSection", "build", "comics_view", "wire"]
