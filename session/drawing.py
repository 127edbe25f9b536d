"""The Comic step: draw, score, choose and redraw panels, and export the comic."""

from __future__ import annotations

import logging
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from pipelines.panel_table import Row, normalise_rows, panels_from_rows, set_seed
from pipelines.project import ComicRequest, Project
from session.errors import StudioError, zero_based
from session.state import (
    MAX_UI_SEED,
    Comic,
    ComicUpdate,
    DrawnPanel,
    Session,
    StyleSettings,
)

if TYPE_CHECKING:  # pragma: no cover
    from configs import AppConfig
    from faces.similarity import PanelScore
    from pipelines.generation import PanelResult

logger = logging.getLogger(__name__)


class DrawingSteps:
    """Drawing (mixed into :class:`~session.studio.Studio`, whose ``generator``,
    ``similarity``, ``components`` and ``_lock`` it uses)."""

    def _reference(self, identity: Any) -> np.ndarray | None:
        """The face-recognition embedding of an identity's library crop (cached), or None."""
        path = getattr(identity, "face_path", None)
        similarity = self.similarity()
        if path is None or similarity is None:
            return None
        key = (str(path), path.stat().st_mtime)
        with self._lock:
            if key in self._references:
                return self._references[key]
        try:
            with Image.open(path) as image:
                vector = similarity.reference(np.asarray(image.convert("RGB")))
        except Exception:  # noqa: BLE001 - a reference without a face just gets no score
            vector = None
        with self._lock:
            self._references[key] = vector
        return vector

    def _matcher(self, identities: Mapping[str, Any], names: Sequence[str]) -> Any:
        """The face pass's :class:`~pipelines.face_pass.IdentityMatcher` for a panel's
        characters (cached references), or None (faces then matched by place)."""
        from pipelines.face_pass import IdentityMatcher

        similarity = self.similarity()
        if similarity is None or not names:
            return None
        references = {name: self._reference(identities[name]) for name in names}
        if any(v is None for v in references.values()):
            return None
        return IdentityMatcher(similarity, references)

    def _score(self, results: list["PanelResult"], identities: Mapping[str, Any]
               ) -> list["PanelScore | None"]:
        similarity = self.similarity()
        if similarity is None or not results or not results[0].characters:
            return [None] * len(results)
        references = {}
        for name in results[0].characters:
            vector = self._reference(identities[name])
            if vector is not None:
                references[name] = vector
        if not references:
            return [None] * len(results)
        return list(similarity.score_candidates([r.image for r in results], references))


    def _drawn(self, text: str, results: list["PanelResult"], identities: Mapping[str, Any],
               choice: int | None) -> DrawnPanel:
        from faces.similarity import pick_best

        scores = self._score(results, identities)
        if choice is not None and 0 <= choice < len(results):
            chosen = choice
        elif all(s is not None for s in scores) and len(results) > 1:
            chosen = pick_best(scores)  # type: ignore[arg-type]
        else:
            chosen = 0
        return DrawnPanel(text=text, results=results, scores=scores, chosen=chosen)

    def generate(self, session: Session, rows: Any, settings: StyleSettings,
                 save_as_new: bool = False) -> Iterator[ComicUpdate]:
        """Draw the comic panel by panel, yielding after each; the last update has pages and files.

        The comic replaces the session's entry in My comics (the comic reopened or drawn last:
        its pages, date and thumbnail change), or becomes a new entry with ``save_as_new`` or
        when the session has none.

        With ``settings.randomize`` a fresh seed is drawn (and reported in every update).
        Everything is checked before the first panel is drawn.
        """
        if settings.randomize:
            settings = replace(settings, seed=secrets.randbelow(MAX_UI_SEED + 1))
        request = self.build_request(session, rows, settings)
        identities = self.identities_for(session, request.cast_names())
        generator = self.generator()
        resolved, prepared = generator.prepare(request, identities)
        warnings = tuple(f"panel {p.index + 1}: '{name}' is listed but not named in the text, so "
                         "that identity will not appear" for p in prepared for name in p.unnamed)
        warnings += tuple(note for note in map(self.base_note, identities.values()) if note)
        restored = session.restored
        choices = restored.choices if restored is not None and \
            _same_request(restored.request, resolved, self.config) else None
        total = len(prepared)
        drawn: list[DrawnPanel] = []
        session.drawing = Comic(request=resolved, title=settings.title, panels=drawn)
        try:
            yield ComicUpdate(gallery=[], status=f"Drawing panel 1 of {total} …",
                              seed=settings.seed, warnings=warnings)
            for panel in prepared:
                results = generator.draw(resolved, panel, self._matcher(identities, panel.characters))
                choice = choices[panel.index] if choices is not None and \
                    panel.index < len(choices) else None
                drawn.append(self._drawn(resolved.panels[panel.index].text, results, identities,
                                         choice))
                if len(drawn) < total:
                    gallery = [(p.image, self._caption(i, p)) for i, p in enumerate(drawn)]
                    yield ComicUpdate(gallery=gallery, seed=settings.seed,
                                      notes=self._notes(drawn, resolved),
                                      status=f"Drew panel {len(drawn)} of {total}; drawing panel "
                                             f"{len(drawn) + 1} …")
            comic = Comic(request=resolved, title=settings.title, panels=drawn)
            if save_as_new:
                session.saved_id = ""  # kept as a new entry in My comics
            self._finish(session, identities, comic)
            session.comic = comic  # the previous comic stays until this one is complete
        finally:
            session.drawing = None
        yield ComicUpdate(gallery=self.panel_gallery(session), seed=settings.seed, done=True,
                          notes=self.panel_notes(session),
                          status=self._done_status(comic), pages=comic.page_files, files=comic.files)

    def _done_status(self, comic: Comic) -> str:
        n = len(comic.panels)
        candidates = comic.request.candidates or 1
        best = f", best of {candidates} per panel by face similarity" if candidates > 1 else ""
        return (f"Done: {n} panel{'s' if n != 1 else ''} on {len(comic.pages)} "
                f"page{'s' if len(comic.pages) != 1 else ''}{best}. Downloads are below.")

    def _finish(self, session: Session, identities: Mapping[str, Any],
                comic: Comic | None = None, keep: bool = True) -> None:
        """Lay out the pages and export every file for ``comic`` (default: the session's); with
        ``keep``, save it in the owner's My comics."""
        from pipelines.export import export_comic
        from pipelines.layout import render_pages
        from pipelines.speech import speaker_targets

        comic = comic or session.comic
        assert comic is not None
        images = [p.image for p in comic.panels]
        detector = self.components().face_detector
        faces = [panel.chosen_faces(detector) for panel in comic.panels]
        targets = [speaker_targets(spec, panel.image.size, panel.results[panel.chosen].faces, found)
                   for spec, panel, found in zip(comic.request.panels, comic.panels, faces)]
        comic.pages = render_pages(images, [p.text for p in comic.request.panels], comic.title,
                                   faces, targets=targets)
        project = Project.from_request(comic.request, self.config, title=comic.title,
                                       choices=[p.chosen for p in comic.panels],
                                       story=session.story, cast=session.cast)
        candidates = {(i, r.candidate): r.image for i, p in enumerate(comic.panels) for r in p.results}
        folder = self.session_folder(session)
        shutil.rmtree(folder, ignore_errors=True)
        written = export_comic(folder, project, images, comic.pages, candidates=candidates,
                              identities=identities, writer=self.author_of(session),
                              paper=self.config.generation.pdf_paper)
        comic.files = [str(p) for p in [*written.pages, written.pdf, written.cbz, written.zip,
                                        written.project]]
        comic.page_files = [str(p) for p in written.pages]
        if keep:
            self._keep(session, comic)


    def choose(self, session: Session, number: Any, candidate: Any) -> None:
        """Put candidate ``candidate`` (1-based) of panel ``number`` into the comic."""
        comic = self._comic(session)
        index = self._panel_index(comic, number)
        panel = comic.panels[index]
        panel.chosen = zero_based(candidate, len(panel.results), "candidate",
                                   f"panel {index + 1} has candidates")
        self._finish(session, self.identities_for(session, comic.request.cast_names()))

    def redraw(self, session: Session, rows: Any, number: Any, seed: Any) -> tuple[list[Row], int]:
        """Draw panel ``number`` again with ``seed`` (blank: a random one).

        The panel's text and characters come from the table's row of that number when the table
        still has one row per panel (so an edited sentence is drawn); the other settings are the
        comic's. Returns the table with the row's seed filled in, and the seed used.
        """
        comic = self._comic(session)
        index = self._panel_index(comic, number)
        if seed in (None, ""):
            new_seed = secrets.randbelow(MAX_UI_SEED + 1)
        else:
            from core.numbers import NotAWholeNumber, whole_number

            try:
                new_seed = whole_number(seed, "the new seed")
            except NotAWholeNumber as exc:
                raise StudioError(f"{exc} (or blank for a random one)") from None
            if not 0 <= new_seed <= MAX_UI_SEED:
                raise StudioError(f"the new seed must be a whole number from 0 to {MAX_UI_SEED}")
        table = normalise_rows(rows)
        panel = comic.request.panels[index]
        edited = [r for r in table if any(r)]
        if len(edited) == len(comic.panels):
            fresh = panels_from_rows([edited[index][:2] + ["", "", edited[index][4]]])[0]
            fresh = self._checked_panel(session, fresh, index + 1)
            panel = replace(panel, text=fresh.text, characters=fresh.characters,
                            speakers=fresh.speakers)
        panel = replace(panel, seed=new_seed)
        request = replace(comic.request, panels=tuple(
            panel if i == index else p for i, p in enumerate(comic.request.panels)))
        identities = self.identities_for(session, request.cast_names())
        results = self.generator().redraw(request, index, new_seed, identities,
                                          self._matcher(identities, request.panels[index].characters))
        comic.request = request
        comic.panels[index] = self._drawn(panel.text, results, identities, None)
        self._finish(session, identities)
        rows_out = table
        if len(edited) == len(comic.panels):
            position = [i for i, r in enumerate(table) if any(r)][index]
            rows_out = set_seed(table, position + 1, new_seed)
        return rows_out, new_seed


def _same_request(saved: ComicRequest, resolved: ComicRequest, config: "AppConfig") -> bool:
    """Whether ``resolved`` draws exactly what the opened project ``saved`` drew."""
    a = saved.resolved(config)
    a = replace(a, panels=tuple(replace(p, seed=a.panel_seed(i)) for i, p in enumerate(a.panels)),
                guidance_scale=float(a.guidance_scale or 0))
    b = replace(resolved, panels=tuple(replace(p, seed=resolved.panel_seed(i))
                                       for i, p in enumerate(resolved.panels)),
                guidance_scale=float(resolved.guidance_scale or 0))
    return replace(a, seed=0) == replace(b, seed=0)



__all__ = ['DrawingSteps']
