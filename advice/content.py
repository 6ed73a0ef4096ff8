"""The content schema: the essay's frame and its points, loaded from YAML and validated at load.

Plain frozen dataclasses, checked by a reader that walks the YAML as it builds them: a problem
is one line naming the field (``points.3.cues.0.text: ...``), in the words of the schema
libraries (pydantic's, which this replaced at a fraction of its memory).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

DEFAULT_CONTENT_PATH = Path(__file__).with_name("points.yaml")
_REPO_ROOT = Path(__file__).resolve().parent.parent

# Discord's embed limits; the schema keeps every point far enough below them that the cogs can
# render one point (advice + prompts + revisit) in a single embed without truncating anything.
EMBED_DESCRIPTION_MAX = 4096
EMBED_FIELD_VALUE_MAX = 1024
EMBED_TOTAL_MAX = 6000
ADVICE_MAX = 1500
POINT_TEXT_MAX = 3000
# `/advice` holds at most 25 subcommands (one is `overview`); `/reflect point:` at most 25 choices.
MAX_POINTS = 24
RESERVED_SLUGS = frozenset({"overview"})
# Cues: the words and phrases in a member's message that point to a point (advice/chat.py).
CUES_MAX = 150
CUE_MAX_CHARS = 40
CUE_MAX_WORDS = 4
CUE_WEIGHT_MAX = 3.0
# Words that every point is about, so none of them may pick one: a cue made of one of these alone
# is refused. A longer phrase that contains one ("research direction") is a cue like any other.
GENERIC_CUES = frozenset(
    {
        "ai",
        "artificial intelligence",
        "machine learning",
        "ml",
        "research",
        "researcher",
        "researchers",
        "researching",
        "science",
        "scientist",
        "scientists",
        "career",
        "careers",
        "job",
        "jobs",
        "work",
        "should",
        "should i",
    }
)
# Words (letters and digits in any script) joined by single spaces, hyphens or apostrophes.
_CUE_TEXT = re.compile(r"[^\W_]+(?:['’ -][^\W_]+)*")
_CUE_WORD_SEPARATORS = re.compile(r"['’ -]")


class Invalid(ValueError):
    """One problem with a content file's data: where (a path of keys and indexes), and what."""

    def __init__(self, location: tuple[str | int, ...], detail: str) -> None:
        super().__init__(detail)
        self.location = location
        self.detail = detail
        self.more = 0  # further problems found after this one

    @property
    def where(self) -> str:
        return ".".join(str(part) for part in self.location) or "(top level)"


class _Reader:
    """Reads one mapping of the YAML at `at`, collecting every problem it meets."""

    def __init__(self, data: Any, at: tuple[str | int, ...], problems: list[Invalid]) -> None:
        self.at = at
        self.problems = problems
        self.data: Mapping[str, Any] = data if isinstance(data, dict) else {}
        self.known: set[str] = set()
        if not isinstance(data, dict):
            self.fail((), "Input should be a valid dictionary or instance of the model")

    def fail(self, where: tuple[str | int, ...], detail: str) -> None:
        self.problems.append(Invalid(self.at + where, detail))

    def take(
        self, key: str, check: Callable[[Any, tuple[str | int, ...]], T], default: Any = ...
    ) -> T:
        """The checked value of `key`; a placeholder (None) after a problem."""
        self.known.add(key)
        if key not in self.data:
            if default is ...:
                self.fail((key,), "Field required")
            return default  # type: ignore[no-any-return]
        try:
            return check(self.data[key], (*self.at, key))
        except Invalid as problem:
            self.problems.append(problem)
            return None  # type: ignore[return-value]

    def done(self) -> bool:
        """Whether everything read was valid (extra keys are problems too)."""
        for key in self.data:
            if key not in self.known:
                self.fail((key,), "Extra inputs are not permitted")
        return not self.problems


def _text(
    *, min_length: int = 1, max_length: int, one_line: bool = False, pattern: str | None = None
) -> Callable[[Any, tuple[str | int, ...]], str]:
    matcher = re.compile(pattern) if pattern else None

    def check(raw: Any, at: tuple[str | int, ...]) -> str:
        if not isinstance(raw, str):
            raise Invalid(at, "Input should be a valid string")
        value = raw.strip()
        if len(value) < min_length:
            plural = "" if min_length == 1 else "s"
            raise Invalid(at, f"String should have at least {min_length} character{plural}")
        if len(value) > max_length:
            raise Invalid(at, f"String should have at most {max_length} characters")
        if matcher and not matcher.search(value):
            raise Invalid(at, f"String should match pattern '{pattern}'")
        if one_line and ("\n" in value or "\r" in value):
            raise Invalid(at, "must be a single line")
        return value

    return check


def _number(
    *,
    integer: bool = False,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
) -> Callable[[Any, tuple[str | int, ...]], float]:
    name = "integer" if integer else "number"

    def check(value: Any, at: tuple[str | int, ...]) -> float:
        number = value
        if isinstance(value, str):  # "2" is 2, as YAML writers expect
            try:
                number = (int if integer else float)(value.strip())
            except ValueError:
                raise Invalid(at, f"Input should be a valid {name}") from None
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise Invalid(at, f"Input should be a valid {name}")
        if not math.isfinite(number) or (integer and number != int(number)):
            raise Invalid(at, f"Input should be a valid {name}")
        if gt is not None and not number > gt:
            raise Invalid(at, f"Input should be greater than {gt:g}")
        if ge is not None and not number >= ge:
            raise Invalid(at, f"Input should be greater than or equal to {ge:g}")
        if le is not None and not number <= le:
            raise Invalid(at, f"Input should be less than or equal to {le:g}")
        return int(number) if integer else float(number)

    return check


def _items(
    check: Callable[[Any, tuple[str | int, ...]], T],
    *,
    min_length: int = 0,
    max_length: int | None = None,
    problems: list[Invalid] | None = None,
) -> Callable[[Any, tuple[str | int, ...]], tuple[T, ...]]:
    def read(value: Any, at: tuple[str | int, ...]) -> tuple[T, ...]:
        if not isinstance(value, list | tuple):
            raise Invalid(at, "Input should be a list")
        if max_length is not None and len(value) > max_length:
            raise Invalid(at, f"List should have at most {max_length} items, not {len(value)}")
        items, failed = [], []
        for index, item in enumerate(value):
            try:
                items.append(check(item, (*at, index)))
            except Invalid as problem:
                failed.append(problem)
        if failed:
            first, *rest = failed
            first.more += len(rest)
            raise first
        if len(items) < min_length:
            plural = "" if min_length == 1 else "s"
            raise Invalid(
                at, f"List should have at least {min_length} item{plural}, not {len(items)}"
            )
        return tuple(items)

    return read


def _emoji(raw: Any, at: tuple[str | int, ...]) -> str:
    value = _text(max_length=16)(raw, at)
    # A real emoji check needs the Unicode emoji tables; this catches the likely mistakes
    # (a word, a ":shortcode:", several emoji separated by spaces) without them.
    if any(ch.isspace() or ord(ch) < 0x80 for ch in value):
        raise Invalid(at, "must be a single emoji character, not text or a :shortcode:")
    return value


def _nested(
    reader: Callable[[Any, tuple[str | int, ...], list[Invalid]], T],
) -> Callable[[Any, tuple[str | int, ...]], T]:
    """A mapping read by `reader`; its first problem raised, with how many more it had."""

    def read(value: Any, at: tuple[str | int, ...]) -> T:
        problems: list[Invalid] = []
        built = reader(value, at, problems)
        if problems:
            first, *rest = problems
            first.more += len(rest) + sum(problem.more for problem in rest)
            raise first
        return built

    return read


@dataclass(frozen=True, slots=True)
class Cue:
    """A word or phrase that, found in a member's message, points to its point by `weight`."""

    text: str
    weight: float = 1.0


def _cue_text(value: Any, at: tuple[str | int, ...]) -> str:
    text = " ".join(_text(max_length=CUE_MAX_CHARS)(value, at).split())
    if not _CUE_TEXT.fullmatch(text):
        raise Invalid(
            at,
            f"cue {text!r} must be words (letters, digits) joined by spaces, hyphens or "
            "apostrophes",
        )
    words = len(_CUE_WORD_SEPARATORS.split(text))
    if words > CUE_MAX_WORDS:
        raise Invalid(at, f"cue {text!r} has {words} words; at most {CUE_MAX_WORDS} allowed")
    if text.lower() in GENERIC_CUES:
        raise Invalid(at, f"cue {text!r} is shared by every point, so it cannot pick one")
    return text


def _cue(value: Any, at: tuple[str | int, ...]) -> Cue:
    """A cue written as `- phrase` (weight 1) or as `- phrase: weight`."""
    weight: Any = 1.0
    if isinstance(value, dict) and len(value) == 1:
        ((value, weight),) = value.items()
        if not isinstance(value, str):
            value = None
    if not isinstance(value, str):
        raise Invalid(
            at,
            "a cue is a word or phrase, or one 'phrase: weight' pair "
            "(quote a cue that YAML reads as a number or yes/no)",
        )
    text = _cue_text(value, (*at, "text"))
    return Cue(text, _number(gt=0, le=CUE_WEIGHT_MAX)(weight, (*at, "weight")))


def _distinct(cues: tuple[Cue, ...], at: tuple[str | int, ...]) -> tuple[Cue, ...]:
    seen: dict[str, int] = {}
    for index, cue in enumerate(cues):
        key = cue.text.lower()
        if key in seen:
            raise Invalid(at, f"cues.{index} {cue.text!r} duplicates cues.{seen[key]}")
        seen[key] = index
    return cues


def _then(
    first: Callable[[Any, tuple[str | int, ...]], T], *more: Callable[[T, tuple[str | int, ...]], T]
) -> Callable[[Any, tuple[str | int, ...]], T]:
    def check(raw: Any, at: tuple[str | int, ...]) -> T:
        value = first(raw, at)
        for step in more:
            value = step(value, at)
        return value

    return check


def _paragraphs(value: Any, at: tuple[str | int, ...]) -> tuple[str, ...]:
    """`advice`: one string as well as a list of paragraphs, together within ADVICE_MAX."""
    paragraphs = _items(_text(max_length=EMBED_FIELD_VALUE_MAX), min_length=1)(
        [value] if isinstance(value, str) else value, at
    )
    length = len("\n\n".join(paragraphs))
    if length > ADVICE_MAX:
        raise Invalid(at, f"advice is {length} characters; at most {ADVICE_MAX} allowed")
    return paragraphs


def _slug(value: Any, at: tuple[str | int, ...]) -> str:
    slug = _text(max_length=10**6, pattern=r"^[a-z]{2,20}$")(value, at)
    if slug in RESERVED_SLUGS:
        raise Invalid(at, f"{slug!r} is reserved for a built-in subcommand")
    return slug


def _line(length: int) -> Callable[[Any, tuple[str | int, ...]], str]:
    return _text(max_length=length, one_line=True)


@dataclass(frozen=True, slots=True)
class Point:
    """One point of the essay: its text, and what the member is asked about it."""

    number: int
    slug: str
    title: str
    label: str
    summary: str
    advice: tuple[str, ...]
    prompts: tuple[str, ...]
    revisit_prompt: str
    emoji: str | None = None
    cues: tuple[Cue, ...] = ()

    @staticmethod
    def read(data: Any, at: tuple[str | int, ...], problems: list[Invalid]) -> Point:
        fields = _Reader(data, at, problems)
        point = Point(
            number=int(fields.take("number", _number(integer=True, ge=1)) or 0),
            slug=fields.take("slug", _slug),
            title=fields.take("title", _line(60)),
            label=fields.take("label", _line(25)),
            emoji=fields.take("emoji", _emoji, None),
            summary=fields.take("summary", _line(100)),
            advice=fields.take("advice", _paragraphs),
            prompts=fields.take("prompts", _items(_line(200), min_length=2, max_length=3)),
            revisit_prompt=fields.take("revisit_prompt", _line(200)),
            cues=fields.take("cues", _then(_items(_cue, max_length=CUES_MAX), _distinct), ()),
        )
        if fields.done() and point.text_length > POINT_TEXT_MAX:
            fields.fail(
                (),
                f"point text is {point.text_length} characters; at most {POINT_TEXT_MAX} allowed",
            )
        return point

    @property
    def advice_text(self) -> str:
        return "\n\n".join(self.advice)

    @property
    def heading(self) -> str:
        """E.g. "3. ⏳ Science takes decades"."""
        emoji = f"{self.emoji} " if self.emoji else ""
        return f"{self.number}. {emoji}{self.title}"

    @property
    def text_length(self) -> int:
        """Characters of everything a point's embed shows, to check it against Discord's limits."""
        parts = (self.heading, self.summary, self.advice_text, *self.prompts, self.revisit_prompt)
        return sum(len(part) for part in parts)


@dataclass(frozen=True, slots=True)
class Frame:
    """The essay's frame: the question, where it came from, and how the bot helps."""

    title: str
    origin: str
    answer: str
    intro: tuple[str, ...]
    closing: str
    author_note: str | None = None

    @staticmethod
    def read(data: Any, at: tuple[str | int, ...], problems: list[Invalid]) -> Frame:
        fields = _Reader(data, at, problems)
        paragraph = _text(max_length=500)
        frame = Frame(
            title=fields.take("title", _line(256)),
            origin=fields.take("origin", paragraph),
            answer=fields.take("answer", paragraph),
            intro=fields.take(
                "intro",
                _items(_text(max_length=EMBED_FIELD_VALUE_MAX), min_length=1, max_length=4),
            ),
            closing=fields.take("closing", paragraph),
            author_note=fields.take("author_note", _or_none(paragraph), None),
        )
        fields.done()
        return frame

    @property
    def text_length(self) -> int:
        parts = (self.title, self.origin, self.answer, *self.intro, self.closing)
        return sum(len(part) for part in parts) + len(self.author_note or "")


def _or_none(
    check: Callable[[Any, tuple[str | int, ...]], T],
) -> Callable[[Any, tuple[str | int, ...]], T | None]:
    def read(value: Any, at: tuple[str | int, ...]) -> T | None:
        return None if value is None else check(value, at)

    return read


class UnknownPoint(LookupError):
    """No point has this slug."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"unknown advice point: {slug!r}")
        self.slug = slug


@dataclass(frozen=True, slots=True)
class Content:
    frame: Frame
    points: tuple[Point, ...]

    @staticmethod
    def read(data: Any) -> Content:
        """Content from the data of a YAML file, or the first Invalid (counting the rest)."""
        problems: list[Invalid] = []
        fields = _Reader(data, (), problems)
        content = Content(
            frame=fields.take("frame", _nested(Frame.read)),
            points=fields.take(
                "points",
                _then(
                    _items(_nested(Point.read), min_length=1, max_length=MAX_POINTS),
                    _numbered_and_unique,
                ),
            ),
        )
        if fields.done():
            _overview_fits(content)
        if problems:
            first, *rest = problems
            first.more += len(rest) + sum(problem.more for problem in rest)
            raise first
        return content

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(point.slug for point in self.points)

    def point(self, slug: str) -> Point:
        for point in self.points:
            if point.slug == slug:
                return point
        raise UnknownPoint(slug)


def _numbered_and_unique(points: tuple[Point, ...], at: tuple[str | int, ...]) -> tuple[Point, ...]:
    seen: dict[str, int] = {}
    for index, point in enumerate(points):
        if point.number != index + 1:
            raise Invalid(
                at,
                f"points.{index}.number is {point.number}, expected {index + 1} "
                "(numbers run 1..n in order)",
            )
        if point.slug in seen:
            raise Invalid(
                at, f"points.{index}.slug {point.slug!r} duplicates points.{seen[point.slug]}.slug"
            )
        seen[point.slug] = index
    return points


def _overview_fits(content: Content) -> None:
    # `/advice overview` shows the frame and one line per point in one embed description.
    length = content.frame.text_length + sum(
        len(point.heading) + len(point.summary) + 8 for point in content.points
    )
    if length > EMBED_DESCRIPTION_MAX:
        raise Invalid(
            (),
            f"the overview (frame + one line per point) is {length} characters; "
            f"at most {EMBED_DESCRIPTION_MAX} fit in one embed",
        )


class ContentError(Exception):
    """A content file that cannot be used; the message is one line naming the file and field."""

    def __init__(self, path: Path, location: str, detail: str) -> None:
        self.path = path
        self.location = location
        self.detail = " ".join(detail.split())
        where = f"{_display(path)}: {location}" if location else _display(path)
        super().__init__(f"{where}: {self.detail}")


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(_REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def load_content(path: Path = DEFAULT_CONTENT_PATH) -> Content:
    """Read and validate a content file; any problem raises ContentError."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContentError(path, "", "file not found") from None
    except UnicodeDecodeError:
        raise ContentError(path, "", "not valid UTF-8") from None
    except OSError as exc:
        raise ContentError(path, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ContentError(path, where, f"YAML syntax error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ContentError(path, "", f"YAML error: {exc}") from None
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ContentError(path, "(top level)", f"expected a mapping (frame, points), got {found}")
    try:
        return Content.read(data)
    except Invalid as problem:
        more = f" (and {problem.more} more)" if problem.more else ""
        raise ContentError(path, problem.where, problem.detail + more) from None


@functools.cache
def default_content() -> Content:
    """The shipped content, loaded once per process."""
    return load_content()
