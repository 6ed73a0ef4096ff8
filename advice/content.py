"""The content schema: the essay's frame and its points, loaded from YAML and validated at load."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    return value


def _one_emoji(value: str) -> str:
    # A real emoji check needs the Unicode emoji tables; this catches the likely mistakes
    # (a word, a ":shortcode:", several emoji separated by spaces) without them.
    if any(ch.isspace() or ord(ch) < 0x80 for ch in value):
        raise ValueError("must be a single emoji character, not text or a :shortcode:")
    return value


def _paragraphs(value: Any) -> Any:
    """Let `advice` be one string as well as a list of paragraphs."""
    return [value] if isinstance(value, str) else value


def _cue_item(value: Any) -> Any:
    """Let a cue be written as `- phrase` (weight 1) or as `- phrase: weight`."""
    if isinstance(value, str):
        return {"text": value}
    if isinstance(value, dict) and len(value) == 1:
        ((text, weight),) = value.items()
        if isinstance(text, str):
            return {"text": text, "weight": weight}
    if not isinstance(value, Cue):
        raise ValueError(
            "a cue is a word or phrase, or one 'phrase: weight' pair "
            "(quote a cue that YAML reads as a number or yes/no)"
        )
    return value


Line25 = Annotated[str, Field(min_length=1, max_length=25), AfterValidator(_one_line)]
Line60 = Annotated[str, Field(min_length=1, max_length=60), AfterValidator(_one_line)]
Line100 = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_one_line)]
Line200 = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_one_line)]
Line256 = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_one_line)]
Paragraph = Annotated[str, Field(min_length=1, max_length=EMBED_FIELD_VALUE_MAX)]
Emoji = Annotated[str, Field(min_length=1, max_length=16), AfterValidator(_one_emoji)]


class _Model(BaseModel):
    # extra="forbid" turns a misspelt key ("promts") into an error instead of a silent default.
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Cue(_Model):
    """A word or phrase that, found in a member's message, points to its point by `weight`."""

    text: str = Field(min_length=1, max_length=CUE_MAX_CHARS)
    weight: float = Field(default=1.0, gt=0, le=CUE_WEIGHT_MAX)

    @field_validator("text")
    @classmethod
    def _words(cls, text: str) -> str:
        text = " ".join(text.split())
        if not _CUE_TEXT.fullmatch(text):
            raise ValueError(
                f"cue {text!r} must be words (letters, digits) joined by spaces, hyphens "
                "or apostrophes"
            )
        words = len(_CUE_WORD_SEPARATORS.split(text))
        if words > CUE_MAX_WORDS:
            raise ValueError(f"cue {text!r} has {words} words; at most {CUE_MAX_WORDS} allowed")
        if text.lower() in GENERIC_CUES:
            raise ValueError(f"cue {text!r} is shared by every point, so it cannot pick one")
        return text


CueItem = Annotated[Cue, BeforeValidator(_cue_item)]


class Point(_Model):
    """One point of the essay: its text, and what the member is asked about it."""

    number: int = Field(ge=1)
    slug: str = Field(pattern=r"^[a-z]{2,20}$")
    title: Line60
    label: Line25
    emoji: Emoji | None = None
    summary: Line100
    advice: Annotated[tuple[Paragraph, ...], BeforeValidator(_paragraphs), Field(min_length=1)]
    prompts: tuple[Line200, ...] = Field(min_length=2, max_length=3)
    revisit_prompt: Line200
    cues: tuple[CueItem, ...] = Field(default=(), max_length=CUES_MAX)

    @field_validator("slug")
    @classmethod
    def _not_reserved(cls, slug: str) -> str:
        if slug in RESERVED_SLUGS:
            raise ValueError(f"{slug!r} is reserved for a built-in subcommand")
        return slug

    @field_validator("advice")
    @classmethod
    def _advice_fits(cls, advice: tuple[str, ...]) -> tuple[str, ...]:
        length = len("\n\n".join(advice))
        if length > ADVICE_MAX:
            raise ValueError(f"advice is {length} characters; at most {ADVICE_MAX} allowed")
        return advice

    @field_validator("cues")
    @classmethod
    def _cues_distinct(cls, cues: tuple[Cue, ...]) -> tuple[Cue, ...]:
        seen: dict[str, int] = {}
        for index, cue in enumerate(cues):
            key = cue.text.lower()
            if key in seen:
                raise ValueError(f"cues.{index} {cue.text!r} duplicates cues.{seen[key]}")
            seen[key] = index
        return cues

    @model_validator(mode="after")
    def _fits_one_embed(self) -> Point:
        if self.text_length > POINT_TEXT_MAX:
            raise ValueError(
                f"point text is {self.text_length} characters; at most {POINT_TEXT_MAX} allowed"
            )
        return self

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


class Frame(_Model):
    """The essay's frame: the question, where it came from, and how the bot helps."""

    title: Line256
    origin: Annotated[str, Field(min_length=1, max_length=500)]
    answer: Annotated[str, Field(min_length=1, max_length=500)]
    intro: tuple[Paragraph, ...] = Field(min_length=1, max_length=4)
    closing: Annotated[str, Field(min_length=1, max_length=500)]
    author_note: Annotated[str, Field(min_length=1, max_length=500)] | None = None

    @property
    def text_length(self) -> int:
        parts = (self.title, self.origin, self.answer, *self.intro, self.closing)
        return sum(len(part) for part in parts) + len(self.author_note or "")


class UnknownPoint(LookupError):
    """No point has this slug."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"unknown advice point: {slug!r}")
        self.slug = slug


class Content(_Model):
    frame: Frame
    points: tuple[Point, ...] = Field(min_length=1, max_length=MAX_POINTS)

    @field_validator("points")
    @classmethod
    def _numbered_and_unique(cls, points: tuple[Point, ...]) -> tuple[Point, ...]:
        seen: dict[str, int] = {}
        for index, point in enumerate(points):
            if point.number != index + 1:
                raise ValueError(
                    f"points.{index}.number is {point.number}, expected {index + 1} "
                    "(numbers run 1..n in order)"
                )
            if point.slug in seen:
                raise ValueError(
                    f"points.{index}.slug {point.slug!r} duplicates points.{seen[point.slug]}.slug"
                )
            seen[point.slug] = index
        return points

    @model_validator(mode="after")
    def _overview_fits(self) -> Content:
        # `/advice overview` shows the frame and one line per point in one embed description.
        length = self.frame.text_length + sum(
            len(point.heading) + len(point.summary) + 8 for point in self.points
        )
        if length > EMBED_DESCRIPTION_MAX:
            raise ValueError(
                f"the overview (frame + one line per point) is {length} characters; "
                f"at most {EMBED_DESCRIPTION_MAX} fit in one embed"
            )
        return self

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(point.slug for point in self.points)

    def point(self, slug: str) -> Point:
        for point in self.points:
            if point.slug == slug:
                return point
        raise UnknownPoint(slug)


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


def _location(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _from_validation_error(path: Path, error: ValidationError) -> ContentError:
    first = error.errors()[0]
    # The reader edits YAML, where every sequence is a list; Python's tuple is our detail.
    detail = first["msg"].removeprefix("Value error, ").replace("Tuple should", "List should")
    detail = detail.replace("a valid tuple", "a list")
    detail = detail.replace(" after validation", "")
    if error.error_count() > 1:
        detail += f" (and {error.error_count() - 1} more)"
    return ContentError(path, _location(first["loc"]), detail)


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
        return Content.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(path, exc) from None


@functools.cache
def default_content() -> Content:
    """The shipped content, loaded once per process."""
    return load_content()
