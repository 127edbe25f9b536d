"""My comics and opening saved projects."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from identities.names import LibraryError
from pipelines.panel_table import rows_from_panels
from pipelines.project import Project, ProjectError, UnknownCharacter, load_project
from serving.saved_comics import ComicNotFound, SavedComic
from session.errors import ModelsUnavailable, StudioError
from session.state import (
    Comic,
    DrawnPanel,
    RestoredProject,
    Session,
    StyleSettings,
    find_name,
)

if TYPE_CHECKING:  # pragma: no cover
    pass

logger = logging.getLogger(__name__)


class SavedComicSteps:
    """My comics and projects (mixed into :class:`~session.studio.Studio`)."""

    def _keep(self, session: Session, comic: Comic) -> None:
        """Save the session's comic in its owner's My comics: a new entry after Generate, the
        same entry after a redraw or a candidate swap. A failure is logged, never fatal (the
        downloads are there); nobody signed in (a Space without login) keeps nothing."""
        owner = self.owner_of(session)
        if owner is None:
            return
        try:
            try:
                saved = self.shelf.save(owner, comic.title, comic.files,
                                        comic_id=session.saved_id or None)
            except ComicNotFound:  # deleted meanwhile: keep it as a new one
                saved = self.shelf.save(owner, comic.title, comic.files)
        except LibraryError as exc:
            logger.warning("could not save the comic in My comics: %s", exc)
            return
        session.saved_id = saved.id

    def author_of(self, session: Session) -> str:
        """The writer of the session's comics (the PDF's author, the CBZ's Writer): the Hugging
        Face user name when signed in with one, else "" (a browser key or this computer names
        nobody)."""
        owner = self.owner_of(session)
        if owner is not None and owner.id.startswith("hf:"):
            return owner.label or owner.id[3:]
        return ""

    def my_comics(self, session: Session) -> list[SavedComic]:
        """The session owner's saved comics, newest first (none without an owner)."""
        owner = self.owner_of(session)
        return self.shelf.list(owner) if owner is not None else []

    def open_saved(self, session: Session, comic_id: Any) -> tuple[RestoredProject, list[str]]:
        """Reopen one of the owner's saved comics: its project (panels, cast, settings, the
        identities inside its zip) goes into the session, its files into the session's download
        folder. Returns the restored project and the download paths (pages first).

        Raises:
            ComicNotFound: nothing selected, not the owner's, deleted meanwhile, or its files are
                damaged (then the session keeps what it had).
        """
        owner = self.owner_of(session)
        if owner is None:
            raise ComicNotFound("log in with Hugging Face to keep and open comics of your own")
        saved = self.shelf.get(owner, comic_id)
        title = saved.title or "Untitled comic"
        damaged = ComicNotFound(f"'{title}' cannot be opened: its files are damaged or missing "
                                "(delete it, or open its comic.zip if you downloaded it)")
        folder = self.session_folder(session)
        staging = folder.with_name(folder.name + ".opening")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir(parents=True)
            for source in saved.files:
                shutil.copyfile(source, staging / source.name)
            load_project(str(staging / saved.zip.name))  # checked before the session changes
        except (OSError, ProjectError):
            shutil.rmtree(staging, ignore_errors=True)
            raise damaged from None
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
        files = [str(folder / source.name) for source in saved.files]
        restored = self.open_project(session, str(folder / saved.zip.name))
        session.saved_id = saved.id
        info = restored.info.replace(f"Opened **{saved.zip.name}**", f"Opened **{title}**", 1)
        return replace(restored, info=info), files

    def rename_saved(self, session: Session, comic_id: Any, title: Any) -> str:
        """Rename one of the owner's saved comics; returns the new title as listed."""
        owner = self.owner_of(session)
        if owner is None:
            raise ComicNotFound("that comic is not among your saved comics")
        renamed = self.shelf.rename(owner, comic_id, str(title or ""))
        if session.saved_id == renamed.id and session.comic is not None:
            session.comic.title = renamed.title  # the next redraw keeps the new title
        return renamed.title or "Untitled comic"

    def saved_title(self, session: Session, comic_id: Any) -> str:
        """The title of one of the owner's saved comics (ComicNotFound when it is not there)."""
        owner = self.owner_of(session)
        if owner is None:
            raise ComicNotFound("that comic is not among your saved comics")
        return self.shelf.get(owner, comic_id).title or "Untitled comic"

    def delete_saved(self, session: Session, comic_id: Any) -> str:
        """Delete one of the owner's saved comics; returns its title."""
        owner = self.owner_of(session)
        if owner is None:
            raise ComicNotFound("that comic is not among your saved comics")
        saved = self.shelf.get(owner, comic_id)
        self.shelf.delete(owner, saved.id)
        if session.saved_id == saved.id:
            session.saved_id = ""
        return saved.title or "Untitled comic"


    def open_project(self, session: Session, path: str | None) -> RestoredProject:
        """Restore panels, cast and settings from a project zip or ``project.json``."""
        if not path:
            raise StudioError("choose a project file first (comic.zip or project.json)")
        shown = Path(path).name
        if Path(path).suffix.lower() not in (".zip", ".json"):
            raise ProjectError(f"'{shown}' is not a project file; open the comic.zip or project.json "
                               "saved by the Generate step")
        try:
            project = load_project(path)
        except ProjectError as exc:
            raise ProjectError(str(exc).replace(str(path), shown)) from None
        request = project.request
        embedded = dict(project.identities)
        # Everything is checked and built before the session changes: a failure below leaves the
        # session's comic, cast and story as they were (all-or-nothing).
        catalog = self.catalog_for(session)
        cast: list[str] = []
        warnings: list[str] = []
        for name in project.cast:
            if name in catalog:
                cast.append(catalog.get(name).name)
            elif find_name(embedded, name) is not None:
                cast.append(find_name(embedded, name).name)  # type: ignore[union-attr]
            else:
                cast.append(name)
                warnings.append(f"'{name}' is neither in the library nor in the project file; "
                                "train that identity before generating")
        if project.preset and project.preset != self.config.name:
            warnings.append(f"the project was drawn with the '{project.preset}' preset and this app "
                            f"runs '{self.config.name}': the pictures will differ")
        gen = self.config.generation
        settings = StyleSettings(
            style=request.style, keywords=tuple(request.keywords),
            negative_prompt=request.negative_prompt if request.negative_prompt is not None
            else gen.negative_prompt,
            seed=request.seed, randomize=False,
            steps=request.steps or gen.steps, guidance=request.guidance_scale or gen.guidance_scale,
            width=request.width or gen.width, height=request.height or gen.height,
            candidates=request.candidates or gen.candidates, title=project.title,
            face_pass=gen.face_pass if request.face_pass is None else request.face_pass,
            loras=tuple(request.loras))
        from pipelines.loras import available_loras

        known = available_loras(self.config.loras_dir)
        warnings += [f"the project uses the LoRA '{c.name}', which this server does not have; add "
                     f"it to {self.config.loras_dir} or set its weight to 0 on the Style step"
                     for c in request.loras if c.weight and c.name not in known]
        comic, identities = self._saved_comic(session, project, path, embedded)
        session.saved_id = ""  # another comic: Generate saves a new entry (open_saved sets it)
        session.embedded = embedded
        session.restored = project
        session.story = project.story
        session.descriptions = request.description_map  # what it was drawn with wins
        session.cast = cast
        session.comic = comic
        if comic is not None:
            try:
                self._finish(session, identities or {}, comic, keep=False)  # opened, not new
            except (ModelsUnavailable, OSError):
                comic.files = [str(path)]
        embedded_text = (f", {len(project.identities)} identit"
                         f"{'y' if len(project.identities) == 1 else 'ies'} inside") if project.identities else ""
        shown_now = ("its pages and panels are shown below; **Generate** draws it again"
                     if session.comic is not None else "press **Generate** to draw it again")
        info = f"Opened **{shown}**: {len(request.panels)} panels{embedded_text}; {shown_now}."
        return RestoredProject(rows=rows_from_panels(request.panels), settings=settings, cast=cast,
                               info=info, warnings=tuple(warnings), story=project.story)

    def _saved_comic(self, session: Session, project: Project, path: str,
                     embedded: dict[str, Any]) -> tuple[Comic | None, dict[str, Any] | None]:
        """(the comic a project zip carries, every panel's candidates and the pages, or None
        when the file holds no complete set of pictures; the cast's identities, or None when one
        is in neither the library nor ``embedded``). Changes nothing in ``session``."""
        from pipelines.export import read_saved_images
        from pipelines.generation import PanelResult, candidate_seed

        request = project.request
        choices = list(project.choices or (0,) * len(request.panels))
        try:
            identities = self.identities_for(session, request.cast_names(), embedded)
        except (LibraryError, UnknownCharacter):
            identities = None
        saved = read_saved_images(path, choices)
        panels = []
        for i, spec in enumerate(request.panels):
            count = sum(1 for (j, _) in saved.panels if j == i)
            if count == 0 or any((i, c) not in saved.panels for c in range(count)) \
                    or choices[i] >= count:
                return None, identities
            results = [PanelResult(index=i, candidate=c, image=saved.panels[(i, c)], prompt=spec.text,
                                   bound_prompt="", negative_prompt=request.negative_prompt or "",
                                   seed=candidate_seed(request.panel_seed(i), c),
                                   characters=tuple(spec.characters)) for c in range(count)]
            scores = self._score(results, identities) if identities is not None \
                else [None] * count
            panels.append(DrawnPanel(text=spec.text, results=results, scores=scores,
                                     chosen=choices[i]))
        return Comic(request=request, title=project.title, panels=panels,
                     pages=saved.pages), identities


__all__ = ['SavedComicSteps']
