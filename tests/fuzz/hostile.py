"""Hypothesis strategies for what a hostile or unlucky member can put into an interaction.

Values are built to get through the emulator (``enforce_client_limits=False``), so they reach
the bot even where a real client would refuse to send them; the emulator still refuses what no
client could encode at all (a string for an integer option, an unknown user).
"""

from dataclasses import dataclass
from typing import TypeVar

from hypothesis import strategies as st

T = TypeVar("T")

# One of each kind of trouble: NUL and controls, lone surrogates, zero-width and joiners, bidi
# overrides, combining marks, non-ASCII digits that str.isdecimal() accepts, look-alikes of
# numbers, markup Discord renders, and text that has broken other programs.
NASTY_PIECES = (
    "\x00",
    "\x07",
    "\x1b[31m",
    "\ud800",
    "\udfff",
    "\udbff\udfff",  # a valid pair, as two code points
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u00ad",
    "\u200e",
    "\u200f",
    "\u202e",
    "\u2066",
    "\u2069",
    "\u061c",
    "\u0301",
    "\u3000",
    "\u00a0",
    "\r\n",
    "\r",
    "\n",
    "\t",
    " ",
    "שלום",
    "مرحبا",
    "١٢٣",
    "１２３",
    "²",
    "Ⅻ",
    "߀",
    "👨\u200d👩\u200d👧",
    "🏳️\u200d🌈",
    "𝔘𝔫𝔦",
    "\U0010ffff",
    "\ufffd",
    "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇",
    "@everyone",
    "<@&1>",
    "<#1>",
    "```",
    "||x||",
    "%s%n{0}",
    "'; DROP TABLE reflections; --",
    "\\",
    ":",
    "cr:",
    "-",
    "0",
    "-1",
    "1e999",
    "NaN",
    "0x7fffffff",
    "9223372036854775808",
    "99999999999999999999",
)

# Integers at and across every boundary an id or option might be stored in.
EDGE_INTS = (
    0,
    1,
    -1,
    2**15,
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    2**53,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**20,
    10**30,
)


def either(usual: st.SearchStrategy[T], odd: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """Half and half (``|`` weighs every branch of a nested one_of the same)."""
    return st.booleans().flatmap(lambda pick: usual if pick else odd)


def hostile_text(max_size: int = 6000) -> st.SearchStrategy[str]:
    """Short strange text, text assembled from nasty pieces, or one thing repeated to any size."""
    pieces = st.lists(
        st.sampled_from(NASTY_PIECES) | st.text(max_size=4), min_size=1, max_size=12
    ).map("".join)
    any_code_point = st.characters(exclude_categories=()) | st.characters(categories=["Cs"])
    repeated = st.builds(
        lambda unit, count: unit * count,
        st.sampled_from(["a", "é", "😀", "\u200b", "ﷺ", "9", " ", "\ud800", "𒐫"]),
        st.integers(0, max_size),
    )
    return st.one_of(
        st.text(max_size=30),
        st.text(any_code_point, max_size=30),
        pieces,
        repeated,
        st.sampled_from(NASTY_PIECES),
    )


def hostile_int(low: int | None = None, high: int | None = None) -> st.SearchStrategy[int]:
    """Integers inside and just outside [low, high], at storage edges, and far beyond 64 bits."""
    near: list[int] = []
    for bound in (low, high):
        if bound is not None:
            near += [bound - 1, bound, bound + 1]
    options = [st.sampled_from(EDGE_INTS), st.integers(), st.integers(-(10**100), 10**100)]
    if near:
        options.insert(0, st.sampled_from(near))
    if low is not None and high is not None:
        options.insert(0, st.integers(low, high))
    return st.one_of(options)


def number_text() -> st.SearchStrategy[str]:
    """What a member might type where a number is expected, as text."""
    return st.one_of(
        hostile_int().map(str),
        st.sampled_from(["", " 3", "3 ", "+3", "3.0", "٣", "３", "²", "1_000", "5" * 5000]),
        hostile_text(max_size=50),
    )


@dataclass(frozen=True)
class Ref:
    """An id that exists only once the arena is seeded: resolved per example (see Arena.resolve).

    ``mine`` ids belong to the member acting, ``theirs`` to another member.
    """

    kind: str  # "member", "entry", "checkin"
    mine: bool
    index: int = 0

    def __repr__(self) -> str:
        return f"{'my' if self.mine else 'their'}-{self.kind}[{self.index}]"


def refs() -> st.SearchStrategy[Ref]:
    return st.builds(
        Ref, st.sampled_from(["member", "entry", "checkin"]), st.booleans(), st.integers(0, 3)
    )


# Ways to write a number that str.isdecimal() and int() both accept, and some they do not.
DIGITS = {
    "arabic": str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"),
    "fullwidth": str.maketrans("0123456789", "０１２３４５６７８９"),
}
ID_STYLES = ("plain", "hash", "spaced", "zeros", "plus", "minus", "arabic", "fullwidth")


@dataclass(frozen=True)
class IdText:
    """A real id typed as text, as a member (or a forged client) might write it."""

    ref: Ref
    style: str

    def render(self, value: int) -> str:
        text = str(value)
        if self.style in DIGITS:
            return text.translate(DIGITS[self.style])
        prefix = {"hash": "#", "spaced": " ", "zeros": "000", "plus": "+", "minus": "-"}
        return prefix.get(self.style, "") + text + (" " if self.style == "spaced" else "")


def id_texts() -> st.SearchStrategy[IdText]:
    return st.builds(IdText, refs(), st.sampled_from(ID_STYLES))


CustomIdPart = str | int | Ref | IdText


def id_parts() -> st.SearchStrategy[list[CustomIdPart]]:
    """The arguments after ``cr:<route>``: real ids of anyone, edge numbers, junk."""
    part: st.SearchStrategy[CustomIdPart] = st.one_of(
        refs(),
        id_texts(),
        st.sampled_from(EDGE_INTS),
        st.integers(),
        st.sampled_from(["", "-", "purpose", "money", "nonsense", "٣", "１", "0" * 30]),
        hostile_text(max_size=120),
    )
    return st.lists(part, max_size=6)


@dataclass(frozen=True)
class ForgedId:
    """A custom_id made from a real one: parts replaced, dropped or added, or the text cut."""

    base: str
    replace: tuple[tuple[int, CustomIdPart], ...] = ()
    keep: int | None = None  # keep only this many parts
    extra: tuple[CustomIdPart, ...] = ()
    cut: int | None = None  # then cut the text to this many characters


def forged_ids(bases: list[str]) -> st.SearchStrategy[ForgedId]:
    """Real ids replayed as they are (another member's, or stale), and mangled every way."""
    part = id_parts().map(lambda parts: parts[0] if parts else "")
    return st.builds(
        ForgedId,
        st.sampled_from(bases),
        replace=st.lists(st.tuples(st.integers(0, 5), part), max_size=3).map(tuple),
        keep=st.none() | st.integers(0, 6),
        extra=st.lists(part, max_size=3).map(tuple),
        cut=st.none() | st.integers(0, 120),
    )
