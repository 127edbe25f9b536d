"""The Style step's settings and the checked comic request built from the panel table."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from identities.names import LibraryError, name_key
from pipelines.loras import LoraChoice
from pipelines.panel_table import panels_from_rows
from pipelines.project import ComicRequest, PanelSpec, UnknownCharacter
from session.errors import StudioError
from session.state import MAX_UI_SEED, Session, StyleSettings, find_name

if TYPE_CHECKING:  # pragma: no cover
    pass

logger = logging.getLogger(__name__)


class RequestSteps:
    """Settings and requests (mixed into :class:`~session.studio.Studio`)."""

    def settings_from(self, style: str | None, keywords: Sequence[str] | None, negative: str | None,
                      seed: Any, randomize: bool, steps: Any, guidance: Any, width: Any,
                      height: Any, candidates: Any, title: str | None,
                      face_pass: bool | None = None, loras: Any = None) -> StyleSettings:
        """The Style and settings step's inputs as :class:`StyleSettings`, checked against
        ``configs/limits.yaml`` (finite numbers, steps, sizes for this preset, guidance, the
        title's ``title_chars``);
        ``face_pass`` None -> the preset's ``generation.face_pass``; ``loras``: the LoRA table's
        rows ``[name, weight]`` (None or empty: none; weight 0 or blank: off)."""
        from configs import load_limits
        from pipelines.request_limits import check_guidance, check_size

        limits = load_limits()

        def number(value: Any, label: str) -> float:
            try:
                result = float(value)
            except (TypeError, ValueError, OverflowError):
                raise StudioError(f"{label} must be a number") from None
            if not math.isfinite(result):
                raise StudioError(f"{label} must be a finite number, got {result}")
            return result

        def whole(value: Any, label: str, low: int, high: int, key: str) -> int:
            result = number(value, label)
            if not result.is_integer() or result < low:
                raise StudioError(f"{label} must be a whole number between {low} and {high}, "
                                  f"got {value}")
            if result > high:
                raise StudioError(limits.refusal(f"{label} {int(result)}", key, high))
            return int(result)

        def text_title(value: str | None) -> str:
            shown = " ".join((value or "").split())
            if len(shown) > limits.title_chars:
                raise StudioError(limits.refusal(f"the title ({len(shown):,} characters)",
                                                 "title_chars"))
            return (value or "").strip()

        def seed_of(value: Any) -> int:
            """The Style step's seed: blank (a number box holding letters sends blank too) is
            refused unless the seed is randomised, never read as 0."""
            wanted = f"the seed must be a whole number from 0 to {MAX_UI_SEED}"
            if value is None or (isinstance(value, str) and not value.strip()):
                if randomize:
                    return 0
                raise StudioError("the seed box is empty or not a number: type a whole number "
                                  f"from 0 to {MAX_UI_SEED} (or tick Randomise the seed)")
            try:
                result = float(value)
            except (TypeError, ValueError, OverflowError):
                raise StudioError(f"{wanted}, got {str(value)[:20]!r}") from None
            if not math.isfinite(result) or not result.is_integer() \
                    or not 0 <= result <= MAX_UI_SEED:
                raise StudioError(f"{wanted}, got {value}")
            return int(result)

        def size(value: Any, label: str) -> int:
            return check_size(label, whole(value, label, 1, 2**62, "max_side"), limits,
                              self.config.name)

        return StyleSettings(
            style=style or self.styles.default_style, keywords=tuple(keywords or ()),
            negative_prompt=negative or "",
            seed=seed_of(seed),
            randomize=bool(randomize), steps=whole(steps, "steps", 1, limits.steps, "steps"),
            guidance=check_guidance(number(guidance, "guidance"), limits),
            width=size(width, "the width"), height=size(height, "the height"),
            candidates=whole(candidates, "candidates per panel", 1, limits.candidates, "candidates"),
            title=text_title(title),
            face_pass=self.config.generation.face_pass if face_pass is None else bool(face_pass),
            loras=self._lora_choices(loras, number))

    @staticmethod
    def _lora_choices(rows: Any, number: Any) -> tuple[LoraChoice, ...]:
        """The LoRA table's rows with a non-zero weight as choices (checked when drawing)."""
        if isinstance(rows, dict):  # the Dataframe's JSON form through the API
            rows = rows.get("data")
        chosen = []
        for row in rows or []:
            if not isinstance(row, (list, tuple)) or len(row) < 2 or not str(row[0] or "").strip():
                continue
            name, weight = str(row[0]).strip(), row[1]
            value = 0.0 if weight in (None, "") else number(weight, f"the weight of the LoRA '{name}'")
            if value:
                chosen.append(LoraChoice(name, value))
        return tuple(chosen)

    def lora_rows(self, chosen: Sequence[LoraChoice] = ()) -> list[list[Any]]:
        """The Style step's LoRA table: every LoRA of ``loras_dir`` with its weight in
        ``chosen`` (else 0), then chosen ones this server lacks (generating says so)."""
        from pipelines.loras import available_loras

        weights = {c.name: c.weight for c in chosen}
        names = available_loras(self.config.loras_dir)
        return [[name, weights.get(name, 0.0)] for name in names] + \
            [[c.name, c.weight] for c in chosen if c.name not in names]

    def build_request(self, session: Session, rows: Any, settings: StyleSettings) -> ComicRequest:
        """The comic to draw from the panel table and the settings, fully checked.

        Raises (one line each): empty panel list, refused terms, too many identities in a panel,
        a character not in the cast, bad style or settings.
        """
        panels = panels_from_rows(rows)
        if not panels:
            raise StudioError("the panel list is empty: press Process Text on the Story step or add "
                              "rows to the table")
        fixed = [self._checked_panel(session, panel, number)
                 for number, panel in enumerate(panels, start=1)]
        self.safety.check(settings.title, "title")
        request = ComicRequest(panels=tuple(fixed), style=settings.style,
                               keywords=tuple(self.styles.keyword_list(settings.keywords)),
                               negative_prompt=settings.negative_prompt, seed=settings.seed,
                               steps=settings.steps, guidance_scale=settings.guidance,
                               width=settings.width, height=settings.height,
                               candidates=settings.candidates, face_pass=settings.face_pass,
                               descriptions=tuple(self.descriptions_for(
                                   session, [n for p in fixed for n in p.characters]).items()),
                               loras=settings.loras)
        return self.generator().check_request(request)

    def _checked_panel(self, session: Session, panel: PanelSpec, number: int) -> PanelSpec:
        """``panel`` with its names spelled as in the cast; refused terms, too many identities and
        characters outside the cast raise."""
        self.safety.check(panel.text, f"text of panel {number}")
        limit = self.config.generation.max_identities_per_panel
        if len(panel.characters) > limit:
            raise StudioError(f"panel {number} has {len(panel.characters)} identities "
                              f"({', '.join(panel.characters)}); the '{self.config.name}' preset "
                              f"draws at most {limit} per panel")
        cast_keys = {name_key(n): n for n in session.cast}
        names = []
        for name in panel.characters:
            if name_key(name) not in cast_keys:
                known = ", ".join(session.cast) or "the cast is empty"
                raise UnknownCharacter(f"panel {number}: '{name}' is not in the cast ({known}); "
                                       "add the character on the Characters step or fix the name")
            names.append(cast_keys[name_key(name)])
        from llm.people import find_outsiders

        named = find_outsiders(panel.text, session.cast, self.library_names(session)).known
        if named:
            raise UnknownCharacter(f"panel {number} names {' and '.join(named)}, who "
                                   f"{'is' if len(named) == 1 else 'are'} not in the cast; add "
                                   "them on the Characters step or change the sentence")
        return replace(panel, characters=tuple(names))

    def identities_for(self, session: Session, names: Sequence[str],
                       embedded: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """name -> identity for ``names``: the library first, then an opened project's zip
        (``embedded``, default the session's; a project being opened passes its own)."""
        found: dict[str, Any] = {}
        inside = session.embedded if embedded is None else embedded
        for name in names:
            try:
                found[name] = self.catalog_for(session).get(name)
            except LibraryError as exc:
                embedded = find_name(inside, name)
                if embedded is None:
                    raise UnknownCharacter(f"character '{name}': {exc}") from None
                found[name] = embedded
        return found


__all__ = ['RequestSteps']
