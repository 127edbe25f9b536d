"""The Characters step: the identity library view and the cast."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from core.files import served_copy
from identities.catalog import CatalogEntry
from identities.names import LibraryError, name_key, show
from models.fingerprint import EncoderFingerprint, same_encoders
from session.errors import StudioError
from session.state import PLACEHOLDER_FACE, Session, find_name

if TYPE_CHECKING:  # pragma: no cover
    pass

logger = logging.getLogger(__name__)
#: The folder under the downloads folder holding the served copies of library pictures.
SERVED_PICTURES = "pictures"


class CastSteps:
    """The library and the cast (mixed into :class:`~session.studio.Studio`, whose
    ``catalog_for``, ``generator``, ``export_root`` and ``config`` it uses)."""

    def base_note(self, identity: Any) -> str | None:
        """One line when ``identity`` was learned on a base whose text encoders differ from the
        loaded one (its ``text_encoders`` fingerprint, :mod:`models.fingerprint`), else None (also
        when the identity has no fingerprint or the models are not loaded yet)."""
        metadata = getattr(identity, "metadata", None) or {}
        stored = EncoderFingerprint.parse(metadata.get("text_encoders", ""))
        loaded = getattr(self._components, "fingerprint", None)
        if stored is None or loaded is None or same_encoders(stored, loaded):
            return None
        base = _short_base(metadata.get("base_model", "")) or "another base"
        return (f"{identity.name} was learned on {base}, whose text encoders differ from the loaded "
                f"base {_short_base(self.config.model.base_name)}: retrain {identity.name} on this base "
                "for a faithful likeness")

    def library_entries(self, session: Session) -> list[CatalogEntry]:
        return self.catalog_for(session).entries()

    def library_names(self, session: Session) -> list[str]:
        """Full names of every identity the user can add (library and examples)."""
        return [e.name for e in self.library_entries(session)]

    def placeholder_face(self) -> str:
        path = self.export_root / PLACEHOLDER_FACE
        if not path.is_file():
            Image.new("RGB", (64, 64), (200, 200, 200)).save(path)
        return str(path)

    def served_picture(self, path: str | Path | None) -> str:
        """What the page shows for a picture of the library or My comics (a face crop, a saved
        comic's first page): a copy under the downloads folder, which Gradio serves, so the data
        root can be anywhere (``/data/embeddings`` on a Space) while Gradio serves nothing else
        of it (docs/APP.md, "What is stored"); the placeholder for None or an unreadable file."""
        if path is None:
            return self.placeholder_face()
        try:
            return str(served_copy(path, self.export_root / SERVED_PICTURES))
        except (OSError, ValueError) as exc:
            logger.warning("cannot show %s: %s", path, exc)
            return self.placeholder_face()

    def gallery_items(self, session: Session) -> list[tuple[str, str]]:
        """(thumbnail path, caption) of every identity, the user's first."""
        return [(self.served_picture(e.identity.face_path), e.caption())
                for e in self.library_entries(session)]

    def library_summary(self, session: Session) -> str:
        """One line counting the identities, plus unreadable library folders if any."""
        entries = self.library_entries(session)
        mine = sum(1 for e in entries if not e.read_only)
        text = f"{mine} identit{'y' if mine == 1 else 'ies'} in your library"
        shipped = len(entries) - mine
        if shipped:
            text += f", {shipped} example{'s' if shipped != 1 else ''}"
        if self.multi_user and self.owner_of(session) is None:
            text += " (log in with Hugging Face to train and keep identities of your own)"
        problems = self.catalog_for(session).problems()
        if problems:
            text += "; unreadable: " + "; ".join(f"{p.folder.name} ({p.message})" for p in problems[:3])
        return text

    def identity_details(self, session: Session, name: str | None) -> tuple[str | None, str]:
        """(reference crop path, markdown) of the identity ``name``; (None, "") for no name."""
        if not name:
            return None, ""
        entry = self.catalog_for(session).find(name)
        meta = entry.identity.metadata
        facts = [f"**{entry.name}**", entry.identity.pronouns or "no pronouns",
                 "shipped example (read-only)" if entry.read_only else "your library"]
        if meta.get("steps"):
            facts.append(f"{meta['steps']} steps")
        if meta.get("preset"):
            facts.append(f"preset {meta['preset']}")
        if meta.get("base_model"):
            facts.append(f"base {_short_base(meta['base_model'])}")
        if meta.get("created"):
            facts.append(meta["created"][:10])
        text = " · ".join(facts)  # training notes (meta["warnings"]) are for the log only
        description, comic_only = self.description(session, entry.name)
        if description:
            text += f"\n\n*{'This comic' if comic_only else 'Description'}:* {description}"
        note = self.base_note(entry.identity)
        if note:
            text += f"\n\n⚠ {note}"
        path = entry.identity.face_path
        return (self.served_picture(path) if path else None), text

    def description(self, session: Session, name: str) -> tuple[str, bool]:
        """(description of ``name``, whether it is this comic's override): the session's
        per-comic one first, then the library's (or an opened project's); ("", False): none."""
        override = find_name(session.descriptions, name)
        if override is not None:
            return override, True
        try:
            return self.catalog_for(session).get(name).description, False
        except LibraryError:
            return "", False

    def descriptions_for(self, session: Session, names: Sequence[str]) -> dict[str, str]:
        """name -> description for the ``names`` that have one (see :meth:`description`)."""
        found = {}
        for name in names:
            text, _ = self.description(session, name)
            if text:
                found[name] = text
        return found

    def describe_identity(self, session: Session, name: str | None, description: str | None,
                          comic_only: bool = False) -> str:
        """Set the description of identity ``name`` ("" clears it): in the library (and every
        later comic), or with ``comic_only`` (always for a shipped example) for this comic only.
        Returns a one-line confirmation.

        Raises:
            StudioError / LibraryError (InvalidDescription, IdentityNotFound): one line.
        """
        from identities.names import clean_description

        if not name or not str(name).strip():
            raise StudioError("choose an identity in the library first (click its picture)")
        text = clean_description(description)
        entry = self.catalog_for(session).find(str(name))
        if comic_only or entry.read_only:
            for stored in [k for k in session.descriptions if name_key(k) == name_key(entry.name)]:
                del session.descriptions[stored]
            session.descriptions[entry.name] = text
            where = "for this comic only" + (" (a shipped example's library entry cannot be "
                                             "changed)" if entry.read_only and not comic_only else "")
        else:
            self.catalog_for(session).describe(entry.name, text)
            for stored in [k for k in session.descriptions if name_key(k) == name_key(entry.name)]:
                del session.descriptions[stored]
            where = "in the library"
        if not text:
            return f"{entry.name} has no description {where}"
        return f"{entry.name}: “{text}” saved {where}; it goes into every panel naming them"

    def _pronouns(self, session: Session, name: str) -> str:
        try:
            return self.catalog_for(session).get(name).pronouns
        except LibraryError:
            embedded = find_name(session.embedded, name)
            return embedded.pronouns if embedded is not None else ""

    def cast_characters(self, session: Session) -> list[tuple[str, str]]:
        """(full name, pronouns) of the cast, for the story parser."""
        return [(name, self._pronouns(session, name)) for name in session.cast]

    def cast_text(self, session: Session) -> str:
        """The cast as one markdown line."""
        if not session.cast:
            return "The cast is empty: pick identities in the library and press **Add to cast**."
        parts = [f"{name} ({p})" if p else name for name, p in self.cast_characters(session)]
        return "**Cast:** " + ", ".join(parts)

    def cast_gallery(self, session: Session) -> list[tuple[str, str]]:
        """(thumbnail, caption) of each cast member."""
        items = []
        for name, pronouns in self.cast_characters(session):
            try:
                face = self.catalog_for(session).get(name).face_path
            except LibraryError:
                face = None
            items.append((self.served_picture(face), f"{name} ({pronouns})" if pronouns else name))
        return items

    def add_to_cast(self, session: Session, name: str | None) -> str:
        """Add the identity ``name`` to the cast; returns its canonical name."""
        if not name or not str(name).strip():
            raise StudioError("choose an identity in the library first (click its picture)")
        identity = self.catalog_for(session).get(str(name))
        from pipelines.binding import BindingError

        try:
            self.generator().binder.check_identity(identity)
        except BindingError as exc:
            raise StudioError(f"{exc}; it cannot be used with the '{self.config.name}' preset") from None
        if any(name_key(n) == name_key(identity.name) for n in session.cast):
            raise StudioError(f"{identity.name} is already in the cast")
        from llm.characters import MAX_CHARACTERS

        if len(session.cast) >= MAX_CHARACTERS:
            raise StudioError(f"the cast is full ({MAX_CHARACTERS} characters)")
        session.cast.append(identity.name)
        return identity.name

    def remove_from_cast(self, session: Session, name: str | None) -> str:
        """Remove ``name`` from the cast; returns the removed name."""
        if not name:
            raise StudioError("choose the cast member to remove")
        for existing in session.cast:
            if name_key(existing) == name_key(str(name)):
                session.cast.remove(existing)
                return existing
        raise StudioError(f"{show(str(name))} is not in the cast")

    def request_delete(self, session: Session, name: str | None) -> str:
        """First step of deleting an identity: remember it and return the question to confirm."""
        if not name:
            raise StudioError("choose the identity to delete in the library first")
        entry = self.catalog_for(session).find(str(name))
        if entry.read_only:
            raise StudioError(f"{entry.name} is a shipped example and cannot be deleted")
        session.pending_delete = entry.name
        return (f"Delete **{entry.name}** from the library for good? Its learned vectors and face "
                "crop are removed; comics already drawn are not affected.")

    def confirm_delete(self, session: Session) -> str:
        """Second step: delete the remembered identity (and drop it from the cast)."""
        name = session.pending_delete
        session.pending_delete = None
        if not name:
            raise StudioError("nothing to delete: choose an identity and press Delete first")
        self.catalog_for(session).delete(name)
        session.cast = [n for n in session.cast if name_key(n) != name_key(name)]
        return name

    def cancel_delete(self, session: Session) -> None:
        session.pending_delete = None


__all__ = ['CastSteps']


def _short_base(base: str) -> str:
    """A base model as shown: a single-file checkpoint by its file name, a repository by its id."""
    return Path(base).name if base.lower().endswith(".safetensors") else base
