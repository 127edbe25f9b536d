"""The Characters step: the identity library view and the cast."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from identities.catalog import CatalogEntry
from identities.names import LibraryError, name_key, show
from models.fingerprint import EncoderFingerprint, same_encoders
from session.errors import StudioError
from session.state import (PLACEHOLDER_FACE, Session, find_name)

if TYPE_CHECKING:  # pragma: no cover
    pass

logger = logging.getLogger(__name__)


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

    def gallery_items(self, session: Session) -> list[tuple[str, str]]:
        """(thumbnail path, caption) of every identity, the user's first."""
        return [(str(e.identity.face_path or self.placeholder_face()), e.caption())
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
        note = self.base_note(entry.identity)
        if note:
            text += f"\n\n⚠ {note}"
        path = entry.identity.face_path
        return (str(path) if path else None), text

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
            items.append((str(face or self.placeholder_face()), f"{name} ({pronouns})" if pronouns else name))
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
