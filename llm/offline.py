"""The offline story parser: rules only, no key, no network.

Pipeline, per story:

1. split into sentences (:func:`llm.text.split_sentences`), one panel per sentence;
2. find character mentions: the full name, or a first name / surname alone when no other
   character shares it ("Taylor", "Swift's", "Dr. Lee");
3. resolve each third-person pronoun to one or more characters, left to right, using the
   characters' pronouns, the clause it sits in and recency (see :func:`_resolve_singular`
   and :func:`_resolve_plural`); resolved pronouns count as mentions for later ones;
4. render: names and pronouns become full names ("his" -> "Hugh Jackman's", "they" ->
   "Hugh Jackman and Taylor Swift"), a few clauses a picture cannot show are dropped
   (", who dislikes apples,"; a leading "After paying for their purchases,"), singular "they"
   gets a singular verb ("They are" -> "Alex Rivera is"), the first letter is capitalised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from llm.characters import PRONOUN_CLASS_OF, Character, CharacterLike, normalize_characters
from llm.errors import StoryError
from llm.panel import Panel, ParseResult
from llm.speakers import find_speakers, normalise_quotes
from llm.text import (
    capitalize_first,
    join_names,
    possessive,
    split_sentences,
    tidy,
)

MAX_STORY_CHARS = 20_000

PRONOUN_RE = re.compile(
    r"(?<![\w-])(he|she|they|him|her|his|hers|them|their|theirs|himself|herself|themselves|themself)"
    r"(?:(['’])(s|d|ll|re|ve))?(?![\w-])",
    re.IGNORECASE,
)
#: "the two women", "both brothers", "the twins", "all three friends": a group of characters.
GROUP_RE = re.compile(
    r"(?<![\w-])(?:(?P<det>the|both|all)\s+)(?:(?P<number>two|three|four|both)\s+)?"
    r"(?P<noun>women|men|girls|boys|ladies|gentlemen|brothers|sisters|twins|friends|pair|couple|"
    r"duo|trio|siblings)(?P<poss>['’]s?)?(?![\w-])",
    re.IGNORECASE,
)
#: "both of them", "the two of them", "all three (of them)", "all of them", "everyone (else)":
#: the named people. The bare forms ("Both waved", "All three laughed") only open a clause.
QUANTIFIER_RE = re.compile(
    r"(?<![\w-])(?:"
    r"(?P<of>(?:both|all(?:\s+(?P<n1>two|three|four|five))?|the\s+(?P<n2>two|three|four|five))"
    r"\s+of\s+them)"
    r"|(?P<every>every(?:one|body)(?:\s+else)?)"
    r"|(?P<bare>both|all\s+(?P<n3>two|three|four|five))(?=\s+[a-z])"
    r")(?![\w-])",
    re.IGNORECASE,
)
#: What may stand before a bare quantifier that opens a clause ("..., and then both left").
_CLAUSE_OPENER_RE = re.compile(r"(?:^|[,;:—(]|\b(?:and|then|but|so|while|when))\s*$",
                               re.IGNORECASE)
#: Words after a bare "both"/"all three" that show it is the subject ("Both waved", "All three
#: were late"), not a determiner ("Both teams", "all three apples"): a past tense, an adverb, or:
_BARE_FOLLOWERS = frozenset(
    """
were are had have will would could can should might must did do went ran sat stood ate drank
took got came saw said made held left fell sang wore rode swam flew hid met fought won lost
began kept felt thought knew grew drew threw spoke broke chose woke laugh laughed smile smiled
wave waved look looked nod nodded agree agreed
""".split())
_NUMBER = {"two": 2, "three": 3, "four": 4, "five": 5}
#: Singular verbs after "everyone" that become plural once it is the people's names.
_PLURAL_VERB = {"was": "were", "is": "are", "has": "have", "does": "do", "wasn't": "weren't",
                "isn't": "aren't", "hasn't": "haven't", "doesn't": "don't"}
_GROUP_CLASS = {"women": "she", "girls": "she", "ladies": "she", "sisters": "she",
                "men": "he", "boys": "he", "gentlemen": "he", "brothers": "he"}
_GROUP_SIZE = {"two": 2, "both": 2, "three": 3, "four": 4, "pair": 2, "couple": 2, "duo": 2,
               "twins": 2, "trio": 3}
_SUBJECT = {"he", "she", "they"}
_REFLEXIVE = {"himself", "herself", "themselves", "themself"}

#: Words after "her"/"his" that show it is not a determiner ("gave her a book", "saw her again").
_NOT_A_NOUN = frozenset(
    """
a an the to and or but nor in on at with for from of by about into onto up down out off over back
away again home too as that this these those some any every each yesterday today tonight tomorrow
now then later there here so if when while before after until because since than through across
around near behind under along toward towards goodbye hello why what how where who whom which not
very well first once twice all both alone is was are were be been being has had have will would
can could should shall might must may do does did goodnight anyway inside outside upstairs
downstairs forward closer his her their its my your our him them me us it
""".split()
)

#: "helped her find", "let her go", "watched her dance": after these verbs "her" + a bare verb is an object.
_CAUSATIVE_VERBS = frozenset(
    """
help helps helped helping let lets letting make makes made making watch watches watched watching
see sees saw seeing hear hears heard hearing feel feels felt bid
""".split()
)
_BARE_VERBS = frozenset(
    """
find get go come see carry lift open stand sit walk run cross climb move pack fix cook learn
understand remember choose pick reach feel look make take put write read dance sing play win
escape hide leave finish start stop eat drink sleep wake fly swim pay buy sell build laugh cry
smile speak talk think try wait jump fall turn catch hold keep change
""".split()
)

#: Words that start a new clause (object pronouns may not refer to a name in their own clause).
_CLAUSE_WORDS = frozenset(
    """
and but or while when because so that who whom which after before until as if since whereas
although though where
""".split()
)
_CLAUSE_RE = re.compile(
    r"[,;:()\"“”—–]|(?<![\w-])(?:" + "|".join(sorted(_CLAUSE_WORDS)) + r")(?![\w-])", re.IGNORECASE
)
#: "and sat down ...": a clause that shares the subject of the sentence (unless a subject follows).
_VP_START_RE = re.compile(r"(?:and|but|or|then)\s+([a-z]+)", re.IGNORECASE)
_NOT_VERB_START = frozenset(
    """
the a an his her their its my your our this that these those he she they it we i you there
some all both every each one two three
""".split()
)

#: Verbs of liking, knowing and wanting: a picture cannot show "who dislikes apples".
_MENTAL_VERB_RE = re.compile(
    r"(?:dis)?lik(?:e|es|ed)|lov(?:e|es|ed)|hat(?:e|es|ed)|ador(?:e|es|ed)|prefer(?:s|red)?|"
    r"know(?:s|n)?|knew|believ(?:e|es|ed)|think(?:s)?|thought|remember(?:s|ed)?|forg(?:et|ets|ot)|"
    r"want(?:s|ed)?|wish(?:es|ed)?|fear(?:s|ed)?|enjoy(?:s|ed)?|hop(?:e|es|ed)|doubt(?:s|ed)?|"
    r"dread(?:s|ed)?|admir(?:e|es|ed)|detest(?:s|ed)?|despis(?:e|es|ed)|trust(?:s|ed)?|"
    r"understand(?:s)?|understood|suspect(?:s|ed)?|worr(?:y|ies|ied)|car(?:e|es|ed)|"
    r"dream(?:s|ed|t)?|regret(?:s|ted)?|resent(?:s|ed)?|envy|envies|envied|miss(?:es|ed)?"
)
_WHO_CLAUSE_RE = re.compile(
    r",\s+who\s+(?:(?:had|has|have|did|does|do|always|never|still|really|also|secretly|truly|"
    r"deeply|just|absolutely|simply|openly|\w+ly)\s+)*(?P<verb>[a-z]+)\b[^,;:!?\"“”]*?"
    r"(?:,|(?=[.!?][\"”]?$))"
)
_LEADING_ADJUNCT_RE = re.compile(
    r"^(?:After|Before|Having)\s+(?:[a-z]+ing|[a-z]+ed|been|done|gone|eaten|seen|taken|"
    r"left|made|bought|paid|met|said|won|lost)\b[^,;:!?\"“”]*,\s*"
)
_SINGULAR_VERB = {
    "are": "is",
    "were": "was",
    "have": "has",
    "do": "does",
    "aren't": "isn't",
    "weren't": "wasn't",
    "haven't": "hasn't",
    "don't": "doesn't",
    "aren’t": "isn’t",
    "weren’t": "wasn’t",
    "haven’t": "hasn’t",
    "don’t": "doesn’t",
}
_PARTICIPLE_HINTS = frozenset({"been", "got", "gotten", "had", "gone", "done", "seen", "taken"})
_DETERMINERS = frozenset({"a", "an", "the", "some", "another", "one", "two", "three", "new"})


@dataclass(frozen=True)
class Mention:
    """Characters referred to at a position of a sentence (by name or by a resolved pronoun)."""

    start: int
    end: int
    names: tuple[str, ...]
    clause: int
    by_pronoun: bool = False
    text: str = ""


@dataclass(frozen=True)
class Resolution:
    """What the parser decided for one pronoun.

    Attributes:
        sentence: index of the sentence (= panel) it occurs in.
        start, end: the span of the pronoun word in that sentence (contraction excluded).
        pronoun: the pronoun as written ("They").
        referents: the full names it refers to; empty when unresolved.
        ambiguous: another character would have fitted as well.
    """

    sentence: int
    start: int
    end: int
    pronoun: str
    referents: tuple[str, ...]
    ambiguous: bool = False


@dataclass
class _Sentence:
    text: str
    mentions: list[Mention] = field(default_factory=list)


@dataclass(frozen=True)
class StoryAnalysis:
    """The sentences of a story with every mention and pronoun resolution found in them."""

    characters: tuple[Character, ...]
    sentences: tuple[str, ...]
    mentions: tuple[tuple[Mention, ...], ...]
    resolutions: tuple[Resolution, ...]
    warnings: tuple[str, ...]
    groups: tuple[Resolution, ...] = ()  # group noun phrases ("the two women"), resolved


# --------------------------------------------------------------------------- input checks


def check_story(story: object) -> str:
    """Return the stripped story or raise :class:`StoryError` (not text, empty, too long)."""
    if not isinstance(story, str):
        raise StoryError("the story must be text")
    text = story.strip()
    if not text:
        raise StoryError("the story is empty: write a few sentences about your characters")
    if len(text) > MAX_STORY_CHARS:
        raise StoryError(f"the story is too long ({len(text):,} characters; at most {MAX_STORY_CHARS:,})")
    if not re.search(r"[^\W\d_]", text):
        raise StoryError("the story has no words")
    return text


# --------------------------------------------------------------------------- names


@dataclass(frozen=True)
class _NameMatcher:
    """One regex finding every character's full name and unambiguous first name / surname."""

    regex: re.Pattern[str]
    group_names: dict[str, str]  # regex group -> full name
    ambiguous: dict[str, tuple[str, ...]]  # short name shared by several characters -> their names


def _name_pattern(words: Sequence[str]) -> str:
    return r"\s+".join(re.escape(w) for w in words)


def build_name_matcher(characters: Sequence[Character]) -> _NameMatcher:
    """Build the mention regex: full names (any case) first, then unique short names (exact case)."""
    owners: dict[str, set[str]] = {}
    for c in characters:
        for alias in (c.first_name, c.surname):
            if alias:
                owners.setdefault(alias, set()).add(c.name)
    full_names = {c.name for c in characters}
    alternatives: list[tuple[int, str, str]] = []
    for c in characters:
        alternatives.append((len(c.name) + 1000, f"(?i:{_name_pattern(c.words)})", c.name))
        for alias in (c.first_name, c.surname):
            if alias and len(owners[alias]) == 1 and alias not in full_names:
                alternatives.append((len(alias), re.escape(alias), c.name))
    alternatives.sort(key=lambda a: -a[0])
    group_names: dict[str, str] = {}
    parts = []
    for i, (_, pattern, name) in enumerate(alternatives):
        group = f"n{i}"
        group_names[group] = name
        parts.append(f"(?P<{group}>{pattern})")
    regex = re.compile(r"(?<![\w-])(?:" + "|".join(parts) + r")(?![\w-])")
    ambiguous = {a: tuple(sorted(n)) for a, n in owners.items() if len(n) > 1}
    return _NameMatcher(regex, group_names, ambiguous)


def _is_part_of_other_name(sentence: str, match: re.Match[str], is_full: bool) -> bool:
    """A short name followed by another capitalised word ("Taylor Swift" for Sam Taylor) is someone else."""
    if is_full:
        return False
    following = re.match(r"\s+([A-Z][\w'’-]*)", sentence[match.end() :])
    return bool(following)


def find_mentions(sentence: str, matcher: _NameMatcher, clause_of: _ClauseIndex) -> list[Mention]:
    """Every character named in ``sentence`` (full name or unambiguous short name)."""
    mentions = []
    for m in matcher.regex.finditer(sentence):
        group = m.lastgroup or ""
        name = matcher.group_names[group]
        is_full = m.group(0).casefold() == " ".join(name.split()).casefold() or " " in m.group(0)
        if _is_part_of_other_name(sentence, m, is_full):
            continue
        mentions.append(Mention(m.start(), m.end(), (name,), clause_of(m.start()), text=m.group(0)))
    return mentions


def absent_characters(story: str, characters: Sequence[Character]) -> list[str]:
    """Names of the characters never named in ``story`` (by full name or a unique short name)."""
    matcher = build_name_matcher(characters)
    found = {matcher.group_names[m.lastgroup or ""] for m in matcher.regex.finditer(story)}
    return [c.name for c in characters if c.name not in found]


# --------------------------------------------------------------------------- clauses


class _ClauseIndex:
    """Maps a character offset of a sentence to the index of the clause it lies in."""

    def __init__(self, sentence: str) -> None:
        self._cuts = [m.start() for m in _CLAUSE_RE.finditer(sentence)]

    def __call__(self, pos: int) -> int:
        return sum(1 for cut in self._cuts if cut < pos)


# --------------------------------------------------------------------------- pronouns


def _pronoun_role(sentence: str, match: re.Match[str]) -> str:
    """One of "subject", "object", "possessive", "reflexive"."""
    word = match.group(1).lower()
    if word in _SUBJECT or match.group(3):
        return "subject"
    if word in _REFLEXIVE:
        return "reflexive"
    if word in {"him", "them"}:
        return "object"
    if word in {"their", "hers", "theirs"}:
        return "possessive"
    # "her" and "his": a determiner if a noun-like word follows
    following = re.match(r"\s+([A-Za-z][\w'’-]*)", sentence[match.end() :])
    next_word = following.group(1).lower() if following else ""
    noun_follows = bool(next_word) and next_word not in _NOT_A_NOUN and not next_word.endswith("ly")
    if word == "his":
        return "possessive"
    if noun_follows and next_word in _BARE_VERBS:
        preceding = re.search(r"([A-Za-z]+)\s+$", sentence[: match.start()])
        if preceding and preceding.group(1).lower() in _CAUSATIVE_VERBS:
            return "object"
    return "possessive" if noun_follows else "object"


def _coordinated_verb_phrase(sentence: str, pos: int) -> bool:
    """Whether ``pos`` lies in a clause like "and sat down ..." that shares the sentence's subject."""
    cuts = [m for m in _CLAUSE_RE.finditer(sentence) if m.start() < pos]
    if not cuts:
        return False
    start = _VP_START_RE.match(sentence, cuts[-1].start())
    return start is not None and start.group(1).lower() not in _NOT_VERB_START


def _distinct(names: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return seen


@dataclass(frozen=True)
class _Scope:
    """Mentions a pronoun may look at, nearest scope first."""

    mentions: tuple[Mention, ...]
    order: int  # 0 = same clause, 1 = current sentence, 2+ = previous sentences
    nearest_first: bool


def _scopes(done: Sequence[_Sentence], current: Sequence[Mention], clause: int, role: str) -> list[_Scope]:
    scopes = []
    if role in {"possessive", "reflexive"}:
        same = tuple(m for m in current if m.clause == clause)
        scopes.append(_Scope(same, 0, True))
    scopes.append(_Scope(tuple(current), 1, False))
    for back, sentence in enumerate(reversed(done)):
        scopes.append(_Scope(tuple(sentence.mentions), 2 + back, False))
    return scopes


def _resolve_singular(
    pclass: str, scopes: Sequence[_Scope], by_name: dict[str, Character], exclude: set[str]
) -> tuple[tuple[str, ...], bool]:
    """Pick one character for he/she: the nearest compatible one in the pronoun's own clause
    (possessives, reflexives), else the first compatible one of the nearest sentence that has
    one (the subject, usually). Returns (names, ambiguous)."""
    for scope in scopes:
        candidates = []
        for m in scope.mentions:
            if len(m.names) != 1:
                continue
            name = m.names[0]
            if by_name[name].accepts(pclass) and name not in exclude:
                candidates.append(name)
        candidates = _distinct(reversed(candidates)) if scope.nearest_first else _distinct(candidates)
        if candidates:
            return (candidates[0],), len(candidates) > 1
    return (), False


def _resolve_plural(
    scopes: Sequence[_Scope], by_name: dict[str, Character], exclude: set[str]
) -> tuple[tuple[str, ...], bool]:
    """Resolve they/them/their: the latest group in the nearest scope with characters; else all
    characters of that scope when two or more; else a lone they/them character; else widen the
    scope until two characters are found. Returns (names, ambiguous)."""
    gathered: list[tuple[int, int, str]] = []  # (scope order, position, name) for widening
    for scope in scopes:
        mentions = [m for m in scope.mentions if not set(m.names) & exclude]
        if not mentions:
            continue
        groups = [m for m in mentions if len(m.names) > 1]
        if groups and not gathered:
            return groups[-1].names, False
        names = _distinct(n for m in mentions for n in m.names)
        if len(names) >= 2 and not gathered:
            return tuple(names), False
        if not gathered and len(names) == 1 and "they" in by_name[names[0]].pronouns:
            return (names[0],), False
        for m in mentions:
            for n in m.names:
                gathered.append((scope.order, m.start, n))
        distinct = _distinct(n for _, _, n in sorted(gathered, key=lambda g: (-g[0], g[1])))
        if len(distinct) >= 2:
            return tuple(distinct), False
    if gathered:
        # only one character anywhere: a lone character with unknown pronouns may be "they"
        name = gathered[0][2]
        if not by_name[name].pronouns:
            return (name,), False
    return (), False


def _all_so_far(done: Sequence[_Sentence], current: Sequence[Mention]) -> tuple[str, ...]:
    names = [n for s in done for m in s.mentions for n in m.names]
    names += [n for m in current for n in m.names]
    return tuple(_distinct(names))


def _resolve(
    sentence: str,
    match: re.Match[str],
    role: str,
    done: Sequence[_Sentence],
    current: Sequence[Mention],
    clause: int,
    by_name: dict[str, Character],
) -> tuple[tuple[str, ...], bool]:
    word = match.group(1).lower()
    pclass = PRONOUN_CLASS_OF[word]
    exclude: set[str] = set()
    if role == "object":
        exclude = {n for m in current if m.clause == clause for n in m.names}
        if current and _coordinated_verb_phrase(sentence, match.start()):
            exclude.update(current[0].names)  # "He apologized and sat down across from them"
    scopes = _scopes(done, current, clause, role)
    if pclass != "they":
        names, ambiguous = _resolve_singular(pclass, scopes, by_name, exclude)
        if not names and exclude:  # "Hugh asked Tom to help him": the clause guess was too strict
            names, ambiguous = _resolve_singular(pclass, scopes, by_name, set())
        return names, ambiguous
    after = sentence[match.end() :]
    before = sentence[: match.start()]
    if re.match(r"\s+all\b", after, re.I) or re.search(r"\ball\s+of\s+$", before, re.I):
        everyone = _all_so_far(done, current)
        if len(everyone) >= 2:
            return everyone, False
    # No fallback without the exclusion here: an object "them" whose only candidates include
    # the subject of its own clause ("Idris sells them") is about objects, not characters
    # (it would have been "themselves"); it is left as written, with a warning.
    return _resolve_plural(scopes, by_name, exclude)


@dataclass(frozen=True)
class _GroupSpec:
    """Who a group phrase may be: ``pclass`` (None: anyone), ``size`` (None: the nearest two or
    more), ``everyone`` (every character named so far)."""

    pclass: str | None
    size: int | None
    everyone: bool = False


def _group_spec(match: re.Match[str]) -> _GroupSpec:
    """The :class:`_GroupSpec` of a :data:`GROUP_RE` or :data:`QUANTIFIER_RE` match."""
    found = match.groupdict()
    if "noun" not in found:  # a quantifier
        if found["every"]:
            return _GroupSpec(None, None, everyone=True)
        number = found["n1"] or found["n2"] or found["n3"]
        if number:
            return _GroupSpec(None, _NUMBER[number.lower()])
        word = (found["of"] or found["bare"] or "").split()[0].lower()
        return _GroupSpec(None, 2 if word == "both" else None)
    noun = match.group("noun").lower()
    size = _GROUP_SIZE.get((match.group("number") or "").lower()) or \
        _GROUP_SIZE.get(match.group("det").lower() if match.group("det").lower() == "both" else "") or \
        _GROUP_SIZE.get(noun)
    return _GroupSpec(_GROUP_CLASS.get(noun), size)


def group_matches(sentence: str) -> list[re.Match[str]]:
    """The group phrases of ``sentence`` in order: group nouns ("the two women") and quantifiers
    ("both of them", "all three", "everyone"; a bare "both"/"all three" only opening a clause,
    so "were both tired" and "raised both hands" stay)."""
    nouns = list(GROUP_RE.finditer(sentence))
    found = list(nouns)
    for m in QUANTIFIER_RE.finditer(sentence):
        if any(n.start() < m.end() and m.start() < n.end() for n in nouns):
            continue
        if m.group("bare"):
            following = re.match(r"\s+([a-z]+)", sentence[m.end():], re.IGNORECASE)
            word = following.group(1).lower() if following else ""
            if not _CLAUSE_OPENER_RE.search(sentence[:m.start()]) or not (
                    word in _BARE_FOLLOWERS or word.endswith(("ed", "ly"))):
                continue
        found.append(m)
    return sorted(found, key=lambda m: m.start())


def pronoun_matches(sentence: str) -> list[re.Match[str]]:
    """The pronouns of ``sentence`` outside its group phrases (the "them" of "both of them" is
    part of the phrase)."""
    spans = [(g.start(), g.end()) for g in group_matches(sentence)]
    return [p for p in PRONOUN_RE.finditer(sentence)
            if not any(a <= p.start() < b for a, b in spans)]


def _resolve_group(
    match: re.Match[str], done: Sequence[_Sentence], current: Sequence[Mention],
    by_name: dict[str, Character], exclude_named: bool = True,
) -> tuple[str, ...]:
    """The characters a group noun phrase names: those of its gender (women -> she, brothers ->
    he, twins/friends/pair -> any) from the previous sentences, nearest first, leaving out who
    the sentence itself already names, as many as its number says ("two", "both", "pair",
    "trio"; none: everyone of the nearest sentence with two or more). Returned in order of first
    mention; empty when too few fit. Quantifiers ("both of them", "all three", "everyone") fit
    anyone; "everyone" is every character named so far but those the sentence already names."""
    spec = _group_spec(match)
    pclass, size = spec.pclass, spec.size
    # "Ada waved at the twins": people already named in the sentence are not the group
    order: list[str] = []  # nearest first
    taken = {n for m in current for n in m.names} if exclude_named else set()
    first_seen = [n for s in done for m in s.mentions for n in m.names] + \
        [n for m in current for n in m.names]
    if spec.everyone:
        everyone = [n for n in _distinct(first_seen) if n not in taken]
        return tuple(everyone) if len(everyone) >= 2 else ()
    for mentions in [[] if exclude_named else list(current), *[s.mentions for s in reversed(done)]]:
        fitting = [n for m in reversed(mentions) for n in m.names
                   if n not in order and n not in taken
                   and (pclass is None or by_name[n].accepts(pclass))
                   and (pclass is None or by_name[n].pronouns)]
        order += _distinct(fitting)
        if size is None and len(order) >= 2:
            break
        if size is not None and len(order) >= size:
            break
    chosen = order[:size] if size is not None else order
    if len(chosen) < (size or 2):
        if exclude_named and "noun" not in match.groupdict():
            # "A and B shook hands, and then both left": the people the sentence names
            return _resolve_group(match, done, current, by_name, exclude_named=False)
        return ()
    return tuple(sorted(chosen, key=first_seen.index))


# --------------------------------------------------------------------------- analysis


def analyze_story(story: str, characters: Iterable[CharacterLike]) -> StoryAnalysis:
    """Split ``story`` into sentences and resolve every name and pronoun in it.

    Raises:
        StoryError: an empty or too long story, no or bad characters.
    """
    text = check_story(story)
    chars = normalize_characters(characters)
    by_name = {c.name: c for c in chars}
    matcher = build_name_matcher(chars)
    starters = {w for c in chars for w in c.words}
    warnings: list[str] = []

    done: list[_Sentence] = []
    resolutions: list[Resolution] = []
    groups: list[Resolution] = []
    for index, sentence in enumerate(split_sentences(text, starters)):
        clause_of = _ClauseIndex(sentence)
        state = _Sentence(sentence)
        name_mentions = find_mentions(sentence, matcher, clause_of)
        pronouns = pronoun_matches(sentence)
        events: list[tuple[int, object]] = [(m.start, m) for m in name_mentions]
        events += [(p.start(), p) for p in pronouns]
        events += [(g.start(), ("group", g)) for g in group_matches(sentence)]
        events.sort(key=lambda e: e[0])
        for _, event in events:
            if isinstance(event, Mention):
                state.mentions.append(event)
                continue
            if isinstance(event, tuple):
                group = event[1]
                names = _resolve_group(group, done, state.mentions, by_name)
                groups.append(Resolution(index, group.start(), group.end(), group.group(0), names))
                if names:
                    state.mentions.append(Mention(group.start(), group.end(), names,
                                                  clause_of(group.start()), True, group.group(0)))
                else:
                    warnings.append(f"sentence {index + 1}: could not tell who "
                                    f"{group.group(0)!r} are; left as written")
                continue
            assert isinstance(event, re.Match)
            role = _pronoun_role(sentence, event)
            clause = clause_of(event.start())
            names, ambiguous = _resolve(sentence, event, role, done, state.mentions, clause, by_name)
            resolution = Resolution(index, event.start(1), event.end(1), event.group(1), names, ambiguous)
            resolutions.append(resolution)
            if names:
                state.mentions.append(
                    Mention(event.start(), event.end(), names, clause, True, event.group(0))
                )
                if ambiguous:
                    warnings.append(
                        f"sentence {index + 1}: {event.group(1)!r} is ambiguous; read as {join_names(names)}"
                    )
            else:
                warnings.append(
                    f"sentence {index + 1}: could not tell who {event.group(1)!r} is; left as written"
                )
        for alias, owners in matcher.ambiguous.items():
            for m in re.finditer(rf"(?<![\w-]){re.escape(alias)}(?![\w-])", sentence):
                if not any(x.start <= m.start() < x.end for x in name_mentions):
                    warnings.append(
                        f"sentence {index + 1}: {alias!r} could be {' or '.join(owners)}; left as written"
                    )
        done.append(state)

    warnings += [f"{name} never occurs in the story" for name in absent_characters(text, chars)]
    return StoryAnalysis(
        characters=tuple(chars),
        sentences=tuple(s.text for s in done),
        mentions=tuple(tuple(s.mentions) for s in done),
        resolutions=tuple(resolutions),
        warnings=tuple(_distinct(warnings)),
        groups=tuple(groups),
    )


# --------------------------------------------------------------------------- rendering


def _drop_spans(sentence: str, mentions: Sequence[Mention]) -> list[tuple[int, int]]:
    """Clauses a picture cannot show: ", who dislikes apples," after a name; a leading
    "After paying for ...," (an earlier event, not this panel's)."""
    drops = []
    for m in mentions:
        if m.by_pronoun:
            continue
        who = _WHO_CLAUSE_RE.match(sentence, m.end)
        if who and _MENTAL_VERB_RE.fullmatch(who.group("verb")):
            drops.append((m.end, who.end()))
    lead = _LEADING_ADJUNCT_RE.match(sentence)
    if lead and lead.end() < len(sentence) - 1:
        drops.append((0, lead.end()))
    return drops


def _pronoun_edits(
    sentence: str, match: re.Match[str], resolution: Resolution, mentions: Sequence[Mention], role: str
) -> list[tuple[int, int, str]]:
    """Text edits that replace one resolved pronoun."""
    names = resolution.referents
    phrase = join_names(names)
    word = match.group(1).lower()
    singular_they = PRONOUN_CLASS_OF[word] == "they" and len(names) == 1
    start, end = match.start(), match.end()
    if role == "subject":
        contraction = (match.group(3) or "").lower()
        rest = sentence[end:]
        next_word = re.match(r"\s+([\w'’]+)", rest)
        following = next_word.group(1).lower() if next_word else ""
        if contraction == "s":
            return [(start, end, f"{phrase} {'has' if following in _PARTICIPLE_HINTS else 'is'}")]
        if contraction == "d":
            had = following in _PARTICIPLE_HINTS or following.endswith("ed")
            return [(start, end, f"{phrase} {'had' if had else 'would'}")]
        if contraction == "ll":
            return [(start, end, f"{phrase} will")]
        if contraction == "re":
            return [(start, end, f"{phrase} {'is' if singular_they else 'are'}")]
        if contraction == "ve":
            return [(start, end, f"{phrase} {'has' if singular_they else 'have'}")]
        edits = [(start, end, phrase)]
        if singular_they and next_word and next_word.group(1).lower() in _SINGULAR_VERB:
            verb = _SINGULAR_VERB[next_word.group(1).lower()]
            edits.append((end + next_word.start(1), end + next_word.end(1), verb))
        return edits
    if role == "possessive":
        return [(start, end, possessive(phrase))]
    if role == "reflexive":
        by = re.search(r"(?<![\w-])by\s+$", sentence[:start], re.IGNORECASE)
        if by:
            return [(by.start(), end, "alone")]
        previous = [m for m in mentions if m.end <= start]
        if (
            previous
            and set(previous[-1].names) == set(names)
            and not sentence[previous[-1].end : start].strip()
        ):
            return [(previous[-1].end, end, "")]  # emphatic: "Hugh Jackman himself"
        following = re.match(r"\s+([A-Za-z]+)", sentence[end:])
        if following and following.group(1).lower() in _DETERMINERS:
            return [(start, end, "")]  # benefactive: "made himself a coffee"
        return [(start, end, phrase)]
    return [(start, end, phrase)]


def _apply(sentence: str, edits: list[tuple[int, int, str]], drops: list[tuple[int, int]]) -> str:
    kept = [e for e in edits if not any(d0 <= e[0] and e[1] <= d1 for d0, d1 in drops)]
    kept += [(d0, d1, "") for d0, d1 in drops]
    kept.sort(key=lambda e: (e[0], -e[1]))
    out, pos = [], 0
    for start, end, replacement in kept:
        if start < pos:
            continue  # overlapping edit (inside a dropped span already applied)
        out.append(sentence[pos:start])
        out.append(replacement)
        pos = end
    out.append(sentence[pos:])
    return "".join(out)


def names_in(text: str, characters: Iterable[Character | str]) -> list[str]:
    """The full names occurring in ``text`` (exact spelling), in order of first occurrence."""
    found = []
    for c in characters:
        name = c.name if isinstance(c, Character) else c
        m = re.search(rf"(?<![\w-]){_name_pattern(name.split())}(?![\w-])", text)
        if m:
            found.append((m.start(), name))
    return [name for _, name in sorted(found)]


def render_sentence(
    sentence: str,
    mentions: Sequence[Mention],
    resolutions: Sequence[Resolution],
    pronoun_matches: Sequence[re.Match[str]],
    groups: Sequence[Resolution] = (),
) -> str:
    """Rewrite one sentence: full names for short names and resolved pronouns, clauses dropped."""
    edits: list[tuple[int, int, str]] = []
    for m in mentions:
        if not m.by_pronoun and m.text != m.names[0]:
            edits.append((m.start, m.end, m.names[0]))
    for match, resolution in zip(pronoun_matches, resolutions, strict=True):
        if resolution.referents:
            role = _pronoun_role(sentence, match)
            edits.extend(_pronoun_edits(sentence, match, resolution, mentions, role))
    for group in groups:
        if group.referents:
            phrase = join_names(group.referents)
            text = group.pronoun
            edits.append((group.start, group.end,
                          possessive(phrase) if text.endswith(("'s", "’s", "s'", "s’")) and
                          re.search(r"['’]s?$", text) else phrase))
            verb = re.match(r"\s+([\w'’]+)", sentence[group.end:])
            if re.match(r"every", text, re.IGNORECASE) and verb and \
                    verb.group(1).lower() in _PLURAL_VERB:  # "Everyone was" -> "... were"
                edits.append((group.end + verb.start(1), group.end + verb.end(1),
                              _PLURAL_VERB[verb.group(1).lower()]))
    drops = _drop_spans(sentence, mentions)
    return capitalize_first(tidy(_apply(sentence, edits, drops)))


def parse_offline(story: str, characters: Iterable[CharacterLike]) -> ParseResult:
    """Parse a story with rules only: one panel per sentence, every character named in full.

    Raises:
        StoryError: empty or too long story; no, bad or duplicate characters.
    """
    analysis = analyze_story(story, characters)
    panels = []
    by_sentence: dict[int, list[Resolution]] = {}
    for r in analysis.resolutions:
        by_sentence.setdefault(r.sentence, []).append(r)
    for index, sentence in enumerate(analysis.sentences):
        resolutions = by_sentence.get(index, [])
        matches = pronoun_matches(sentence)
        groups = [g for g in analysis.groups if g.sentence == index]
        text = normalise_quotes(render_sentence(sentence, analysis.mentions[index], resolutions,
                                                matches, groups))
        named = names_in(text, analysis.characters)
        panels.append(Panel(text=text, characters=named, speakers=find_speakers(text, named)))
    return ParseResult(panels=panels, parser="offline", warnings=list(analysis.warnings))
