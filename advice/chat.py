"""Which point of the essay fits what a member wrote: an offline, deterministic cue matcher.

Each point carries cues in points.yaml: words and short phrases, each with a weight. A message is
cleaned (code blocks, links, mentions and invisible characters go), cut into words, and each word
is reduced to a stem, so "salary", "salaries" and "Salary's" meet, as do "researchers" and
"research". A word that is no cue's stem may be a slip on one ("mony", "salery", "forgoten"):
one letter off a single-word cue's stem of five letters or more, of the kinds of slip that
seldom turn one English word into another (see `_slips`). A phrase cue matches its words in order
with at most one other word between two of them ("center of the attention").

A point's score is the sum of the weights of its distinct cues found in the message; the words of
a phrase found do not count again as single words. The best point is confident when its score
reaches CONFIDENT_SCORE: one cue of weight 1 is enough, a weaker one needs company. Words that
every point is about ("AI", "research", "career", "should I") are no point's cue (the content
schema refuses them), so they never pick one.

Pure: no Discord, no SQL, no I/O; the same text always gives the same answer. A matcher is built
once per content (`Matcher.from_content`, or `default_matcher()`), then `match` is called for
each message.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import compress

from advice.content import Content, default_content

# Discord lets a message be at most 4,000 characters; anything beyond is not read.
MAX_INPUT_CHARS = 4000
CONFIDENT_SCORE = 1.0
MAX_POINTS = 2
# The second point is shown beside the best one only with at least this share of its score.
SECOND_SHARE = 0.5
# Explanations quote at most this many of the member's words.
BECAUSE_MAX_WORDS = 4
# Between two words of a phrase cue, at most this many other words.
PHRASE_GAP = 1
# Longer words are no word of ours (hashes, base64, keyboard mashing).
MAX_WORD_CHARS = 30
# Only single-word cues whose stem has at least this many letters are found through a slip.
SLIP_MIN_STEM = 5
# Pieces of text already read (between two spaces), remembered up to this many, then forgotten
# at once: about 100 bytes each.
_MEMO_MAX = 4096

# --- cleaning ------------------------------------------------------------------------------------

_FENCED_CODE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_NOISE = re.compile(
    r"https?://\S+|www\.\S+"  # links
    # mentions of members, roles, channels and commands; custom emoji; timestamps
    r"|<(?:@[!&]?\d+|#\d+|a?:\w{1,64}:\d+|t:-?\d+(?::\w)?|/[\w -]{1,100}:\d+)>"
    r"|@(?:everyone|here)\b"
)
# Format characters that hide inside words (zero-width spaces and joiners, bidi marks, soft
# hyphens, word joiners, variation selectors, the BOM, tag characters): removed, so the parts of
# a word they split join again.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e0fff]"
)
# Lone surrogates (a string from JSON may hold "\ud800") are no text: each becomes a space.
_SURROGATES = re.compile("[\ud800-\udfff]")
# A word: letters and digits, with inner apostrophes ("don't", "Jianlin's"); or an abbreviation
# with dots ("Ph.D.", "p.h.d"), which is one word when it is short.
_WORD = re.compile(
    r"(?<![^\W_])(?:[^\W\d_]{1,2}\.)+[^\W\d_]{1,2}(?![^\W_])\.?"
    r"|[^\W_]+(?:['’][^\W_]+)*"
)
# What often sticks to a word without making it two ("money," "(salary)" "**fame**").
_STUCK = "\"'“”‘’.,!?;:()[]{}*_~`"


def clean(text: str) -> str:
    """The part of a message that is read: no code blocks, links, mentions or invisible marks."""
    text = text[:MAX_INPUT_CHARS]
    if "```" in text:
        text = _FENCED_CODE.sub(" ", text)
    if not text.isascii():
        text = _SURROGATES.sub(" ", text)
        text = _INVISIBLE.sub("", text)
        text = unicodedata.normalize("NFKC", text)
    if "<" in text or "@" in text or "://" in text or "www." in text:
        text = _NOISE.sub(" ", text)
    return text


def words(text: str) -> Iterator[tuple[str, int, int]]:
    """The words of cleaned text as (word, start, end); an abbreviation "Ph.D." is one word."""
    for found in _WORD.finditer(text):
        word = found.group()
        if "." not in word:
            yield word, found.start(), found.end()
            continue
        parts = word.rstrip(".").split(".")
        if any(len(part) == 1 for part in parts) and sum(map(len, parts)) <= 4:
            yield word, found.start(), found.end()
            continue
        # Two words with the space after a full stop missing ("is.It"): read them apart.
        offset = found.start()
        for part in parts:
            yield part, offset, offset + len(part)
            offset += len(part) + 1


# --- stems ---------------------------------------------------------------------------------------

_VOWELS = frozenset("aeiouy")
# Inflections, then derivations (up to two: "loneliness" -> "lonely" -> "lone"); each rule is a
# suffix, its replacement and the fewest letters it must leave.
_INFLECTIONS = (
    ("ies", "y", 3),
    ("ied", "y", 3),
    ("sses", "ss", 2),
    ("ingly", "", 3),
    ("edly", "", 3),
    ("ing", "", 3),
    ("ed", "", 3),
)
_DERIVATIONS = (
    ("ization", "ize", 3),
    ("ational", "ate", 3),
    ("fulness", "", 4),
    ("iveness", "ive", 3),
    ("ousness", "", 3),
    ("ation", "ate", 3),
    ("iness", "y", 3),
    ("ness", "", 3),
    ("ment", "", 3),
    ("ity", "", 3),
    ("ous", "", 3),
    ("ful", "", 3),
    ("ly", "", 4),
)
_INFLECTION_ENDS = tuple(rule[0] for rule in _INFLECTIONS)
_DERIVATION_ENDS = tuple(rule[0] for rule in _DERIVATIONS)
_UNDOUBLE = frozenset("bdfgmnprt")
_BRITISH = ("ise", "ised", "ises", "ising", "isation", "isations")
# Words the rules would get wrong: "likes" on a post are not "I feel like", nor is "incoming"
# "income". "-er" is no rule ("follower" is not "follow", nor "manager" "manage"), but a
# researcher does research.
_STEM_EXCEPTIONS = {
    "likes": "likes",
    "incoming": "incoming",
    "researcher": "research",
    "researchers": "research",
}


def stem(word: str) -> str:
    """A light English stemmer for matching, not for linguists: one stem for a word's forms.

    "salaries" and "salary" -> "salary"; "researchers", "researching" -> "research";
    "obscurity" and "obscure" -> "obscur"; "quitting" -> "quit"; "specialised" -> "specializ".
    """
    w = word.lower()
    if "’" in w:
        w = w.replace("’", "'")
    if "." in w:
        w = w.replace(".", "")
    if "'" in w:
        if w.endswith("'s"):
            w = w[:-2]
        elif w.endswith("s'"):
            w = w[:-1]
    if len(w) <= 3:
        return w
    if w in _STEM_EXCEPTIONS:
        return _STEM_EXCEPTIONS[w]
    if len(w) >= 7 and w.endswith(_BRITISH):
        at = w.rindex("is")
        w = w[:at] + "iz" + w[at + 2 :]
    if w[-1] == "s" and not w.endswith(("ss", "us", "is", "ies")):
        w = w[:-1]
        if w in _STEM_EXCEPTIONS:
            return _STEM_EXCEPTIONS[w]
    if w.endswith(_INFLECTION_ENDS):
        for suffix, replacement, shortest in _INFLECTIONS:
            if w.endswith(suffix):
                base = w[: -len(suffix)]
                if len(base) >= shortest and not _VOWELS.isdisjoint(base):
                    w = base + replacement
                    if not replacement and len(w) > 3 and w[-1] == w[-2] and w[-1] in _UNDOUBLE:
                        w = w[:-1]  # "quitting" -> "quit", "planned" -> "plan"
                break
    for _ in range(2):  # "loneliness" -> "lonely" -> "lone"; "famously" -> "famous" -> "fam"
        if not w.endswith(_DERIVATION_ENDS):
            break
        before = w
        for suffix, replacement, shortest in _DERIVATIONS:
            if w.endswith(suffix):
                base = w[: -len(suffix)]
                # (not "comply" -> "comp")
                if len(base) >= shortest and not (suffix == "ly" and base[-1] == "p"):
                    w = base + replacement
                break
        if w == before:
            break
    if len(w) > 3 and w[-1] == "e":
        w = w[:-1]  # "hope", "hoping", "hoped" -> "hop"
    return w


# One edit turns many English words into others ("sock" into "stock", "master" into "matter"), so
# only slips that people make and that seldom land on another word count: checked against 35,000
# English words, these let about 30 through where any one edit let hundreds, and the commonest of
# those are never read as slips.
_SLIP_VOWELS = "aeiou"
_NOT_SLIPS = frozenset(
    map(
        stem,
        str.split(
            "patent produce produced producing preset prod employee foster paris dram corpora"
        ),
    )
)


def _slips(target: str) -> Iterator[str]:
    """The misspellings of a stem that are read as it, never at its first letter: a vowel left
    out ("mony"), or one of a double letter ("forgoten"), or any letter of a stem of seven or
    more ("morgage"); a letter doubled ("moneey"); two neighbours swapped ("monye"); a wrong
    vowel ("salery") in stems of six letters or more."""
    m = len(target)
    for i in range(m):
        c = target[i]
        yield target[: i + 1] + c + target[i + 1 :]  # doubled
        if i == 0:
            continue
        if m >= 7 or c in _SLIP_VOWELS or c == target[i - 1] or (i + 1 < m and c == target[i + 1]):
            yield target[:i] + target[i + 1 :]  # left out
        if i + 1 < m and c != target[i + 1]:
            yield target[:i] + target[i + 1] + c + target[i + 2 :]  # swapped
        if m >= 6 and c in _SLIP_VOWELS:
            for vowel in _SLIP_VOWELS:
                if vowel != c:
                    yield target[:i] + vowel + target[i + 1 :]  # wrong vowel


# --- the answer ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PointMatch:
    """One point that fits a message: its slug, score, and the member's words that led to it."""

    slug: str
    score: float
    words: tuple[str, ...]  # as the member wrote them, in their order, each once

    @property
    def because(self) -> str:
        """E.g. 'you mentioned "salary" and "pay cut"'; "" when no word matched."""
        return _because(self.words)


@dataclass(frozen=True, slots=True)
class ChatMatch:
    """The answer to one message: at most two points, best first, and whether the best fits.

    `points` may hold points that are not `confident` (a weak cue or two): the bot then offers
    the six instead of answering with one, and may list these first.
    """

    points: tuple[PointMatch, ...]
    confident: bool

    @property
    def best(self) -> PointMatch | None:
        return self.points[0] if self.points else None

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(point.slug for point in self.points)

    @property
    def because(self) -> str:
        """The words behind the points shown, e.g. 'you mentioned "money" and "PhD"'."""
        return _because(_distinct(word for point in self.points for word in point.words))


NO_MATCH = ChatMatch(points=(), confident=False)


def _because(found: tuple[str, ...]) -> str:
    if not found:
        return ""
    quoted = [f'"{word}"' for word in found[:BECAUSE_MAX_WORDS]]
    if len(quoted) == 1:
        return f"you mentioned {quoted[0]}"
    return f"you mentioned {', '.join(quoted[:-1])} and {quoted[-1]}"


def _distinct(items: Iterable[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        if item.casefold() not in seen:
            seen.add(item.casefold())
            out.append(item)
    return tuple(out)


# --- the matcher ---------------------------------------------------------------------------------

# A phrase cue is looked for by its least common word, so that the search for it starts seldom:
# not by a little word ("on my own" by "own"), nor by a common one where it has another.
_FUNCTION_WORDS = frozenset(
    map(
        stem,
        str.split(
            "a an the i i'm i'd me my mine you your we our us they them their he she his her it"
            " its this that these those to of in on at for with from by about as into over up down"
            " out off and or but if so than then too very just what which who when where why how"
            " is am are was were be been being do does did have has had will would can could may"
            " might must not no all any some much many more most other such only same each both"
            " few there here get got go going make made want like one thing things"
        ),
    )
)
_COMMON_WORDS = frozenset(
    map(
        stem,
        str.split(
            "work year years time life people good real know take long new day way think feel"
            " need say see look come give use find tell ask seem try leave call keep let begin"
            " show hear play run move live believe bring happen write provide sit stand lose pay"
            " meet include continue set learn change lead understand watch follow stop create"
            " speak read spend grow open walk win offer remember love consider appear buy wait"
            " serve die send expect build stay fall cut reach kill remain"
        ),
    )
)


@dataclass(frozen=True, slots=True)
class _Cue:
    point: int  # index into the matcher's slugs
    key: int  # which cue of its point
    weight: float
    stems: tuple[str, ...]


# A word of a piece of text (between two spaces) that is a cue's word: (index among the piece's
# words, stem, start, end in the piece, whether a match may start from it: a single-word cue, or
# the word a phrase is looked for by; the other words of phrases only complete a phrase).
_Hit = tuple[int, str, int, int, bool]
# The same in a message: (piece, index in the piece, stem, start, end, may start).
_Found = tuple[int, int, str, int, int, bool]
_Cues = dict[tuple[int, int], tuple[float, tuple[int, int], str]]  # -> weight, where, words


class Matcher:
    """Finds the points a message is about by their cues: build once, then `match` each message.

    Safe to share between tasks and threads: the only state that changes is a bounded memo of
    the pieces of text already read, which never changes an answer.
    """

    def __init__(self, slugs: tuple[str, ...], cues: Iterable[_Cue]) -> None:
        self.slugs = slugs
        distinct: dict[tuple[int, tuple[str, ...]], _Cue] = {}
        for cue in cues:
            # "salary" and "salaries" are one cue of a point: the same stems.
            known = distinct.get((cue.point, cue.stems))
            if known is None or cue.weight > known.weight:
                distinct[(cue.point, cue.stems)] = cue
        single: dict[str, list[_Cue]] = {}
        phrases: dict[str, list[_Cue]] = {}
        # Stronger, then longer phrases take their words first.
        for cue in sorted(
            distinct.values(), key=lambda c: (-c.weight, -len(c.stems), c.point, c.key)
        ):
            if len(cue.stems) == 1:
                single.setdefault(cue.stems[0], []).append(cue)
            else:
                phrases.setdefault(_anchor(cue.stems), []).append(cue)
        self._single = {stem: tuple(found) for stem, found in single.items()}
        self._phrases = {stem: tuple(found) for stem, found in phrases.items()}
        self._starts = frozenset(self._single) | frozenset(self._phrases)
        self._inner = frozenset(word for cue in distinct.values() for word in cue.stems).difference(
            self._starts
        )
        # Slips on single-word cues, each read as the stem it misspells (the first in order when
        # two stems share one; never a word that is itself a cue's word).
        self._slips: dict[str, str] = {}
        taken = self._starts | self._inner | _NOT_SLIPS
        for target in sorted(self._single):
            if len(target) >= SLIP_MIN_STEM:
                for slip in _slips(target):
                    if slip not in taken:
                        self._slips.setdefault(slip, target)
        self._memo: dict[str, tuple[_Hit, ...]] = {}

    @classmethod
    def from_content(cls, content: Content) -> Matcher:
        cues = []
        for index, point in enumerate(content.points):
            for key, cue in enumerate(point.cues):
                stems = tuple(stem(word) for word, _, _ in words(clean(cue.text)))
                if stems:
                    cues.append(_Cue(point=index, key=key, weight=cue.weight, stems=stems))
        return cls(content.slugs, cues)

    def match(self, text: str) -> ChatMatch:
        """The points that fit `text`, best first (at most two), and whether the best is sure.

        Never raises for any string: empty, 4,000 characters or more, code, emoji, invisible
        characters or lone surrogates.
        """
        if not isinstance(text, str) or not text:
            return NO_MATCH
        pieces = clean(text).split()
        # Most pieces were read before, and most hold no cue's word: look them up at C speed.
        reads = list(map(self._memo.get, pieces))
        if None in reads:
            for index, read in enumerate(reads):
                if read is None:
                    reads[index] = self._read(pieces[index])
        hits: list[_Found] = [
            (index, offset, word, start, end, starts)
            for index in compress(range(len(reads)), reads)
            for offset, word, start, end, starts in reads[index] or ()
        ]
        if not hits:
            return NO_MATCH
        # Phrases first, the stronger and longer first: their words do not count again alone.
        candidates: list[tuple[float, int, int, int, list[int], _Cue]] = []
        present: set[str] | None = None
        for at, hit in enumerate(hits):
            phrases = self._phrases.get(hit[2]) if hit[5] else None
            if phrases:
                if present is None:
                    present = {other[2] for other in hits}
                for cue in phrases:
                    if present.issuperset(cue.stems):
                        chain = _find_phrase(cue.stems, hits, at)
                        if chain:
                            rank = (-cue.weight, -len(chain), cue.point, cue.key, chain, cue)
                            candidates.append(rank)
        found: _Cues = {}
        used: set[int] = set()  # hits taken by a phrase
        for *_, chain, cue in sorted(candidates, key=lambda c: c[:5]):
            if used.isdisjoint(chain) and (cue.point, cue.key) not in found:
                used.update(chain)
                head, tail = hits[chain[0]], hits[chain[-1]]
                if head[0] == tail[0]:
                    surface = pieces[head[0]][head[3] : tail[4]]
                else:
                    middle = pieces[head[0] + 1 : tail[0]]
                    surface = " ".join(
                        [pieces[head[0]][head[3] :], *middle, pieces[tail[0]][: tail[4]]]
                    )
                found[(cue.point, cue.key)] = (cue.weight, head[0:2], surface)
        for at, hit in enumerate(hits):
            if hit[5] and at not in used:
                for cue in self._single.get(hit[2], ()):
                    surface = pieces[hit[0]][hit[3] : hit[4]]
                    found.setdefault((cue.point, cue.key), (cue.weight, hit[0:2], surface))
        return self._rank(found)

    def _rank(self, found: _Cues) -> ChatMatch:
        if not found:
            return NO_MATCH
        scores: dict[int, float] = {}
        spoken: dict[int, list[tuple[tuple[int, int], str]]] = {}
        for (point, _), (weight, where, surface) in found.items():
            scores[point] = scores.get(point, 0.0) + weight
            spoken.setdefault(point, []).append((where, surface))
        # Ties: more distinct cues first, then the essay's order.
        order = sorted(scores, key=lambda p: (-scores[p], -len(spoken[p]), p))
        best = scores[order[0]]
        chosen = order[:1] + [p for p in order[1:MAX_POINTS] if scores[p] >= best * SECOND_SHARE]
        points = tuple(
            PointMatch(
                slug=self.slugs[p],
                score=round(scores[p], 6),
                words=_distinct(surface for _, surface in sorted(spoken[p])),
            )
            for p in chosen
        )
        return ChatMatch(points=points, confident=best >= CONFIDENT_SCORE)

    def _read(self, piece: str) -> tuple[_Hit, ...]:
        """The cue words in a piece of text (memoised; the memo is bounded)."""
        hits: list[_Hit] = []
        core = piece.strip(_STUCK)
        if core.isalpha():  # most pieces: one plain word, perhaps with a comma or quotes
            start = len(piece) - len(piece.lstrip(_STUCK))
            found: Iterable[tuple[str, int, int]] = ((core, start, start + len(core)),)
        else:
            found = words(piece)
        for count, (word, start, end) in enumerate(found):
            if len(word) > MAX_WORD_CHARS:
                continue
            stemmed = stem(word)
            if stemmed in self._starts:
                hits.append((count, stemmed, start, end, True))
            elif stemmed in self._inner:
                hits.append((count, stemmed, start, end, False))
            elif stemmed in self._slips:
                hits.append((count, self._slips[stemmed], start, end, True))
        read = tuple(hits)
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[piece] = read
        return read


def _find_phrase(stems: tuple[str, ...], hits: list[_Found], anchor: int) -> list[int]:
    """The hits that spell a phrase and take the one at `anchor` (the word it is looked for
    by); [] if there are none."""
    reach = hits[anchor][0] - (len(stems) - 1) * (PHRASE_GAP + 1)
    first = anchor
    while first > 0 and hits[first - 1][0] >= reach:
        first -= 1
    for start in range(first, anchor + 1):
        chain = _chain(hits, start, stems)
        if chain and anchor in chain:
            return chain
    return []


def _chain(hits: list[_Found], first: int, stems: tuple[str, ...]) -> list[int]:
    """The indexes in `hits` that spell `stems` from `first` on, each at most PHRASE_GAP words
    after the one before; [] if they don't."""
    if hits[first][2] != stems[0]:
        return []
    chain = [first]
    for want in stems[1:]:
        last = hits[chain[-1]]
        for later in range(chain[-1] + 1, len(hits)):
            hit = hits[later]
            # Words from the last one: in its piece, or pieces on plus the place in the piece.
            step = hit[1] - last[1] if hit[0] == last[0] else hit[0] - last[0] + hit[1]
            if step > 1 + PHRASE_GAP:
                return []
            if hit[2] == want:
                chain.append(later)
                break
        else:
            return []
    return chain


def _anchor(stems: tuple[str, ...]) -> str:
    """The word a phrase is looked for by: its first uncommon word, else its first that is not a
    function word, else its first."""
    for word in stems:
        if word not in _FUNCTION_WORDS and word not in _COMMON_WORDS:
            return word
    return next((word for word in stems if word not in _FUNCTION_WORDS), stems[0])


@functools.cache
def default_matcher() -> Matcher:
    """The matcher for the shipped content, built once per process."""
    return Matcher.from_content(default_content())
