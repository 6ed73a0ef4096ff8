"""A terminal REPL on top of the emulator: be a member of the test server and talk to the bot.

``python bot.py sandbox`` runs the real bot against the emulator and hands the terminal to
``run_console``. Type ``/advice purpose`` or ``/decide leaning:leaning yes why:Impact matters``
(options as ``name:value``; as in Discord's client a value runs until the next `` name:`` naming
another of the command's options, and quotes still work), press buttons by number, fill in
modals field by field. ``name:?`` asks the bot's autocomplete for that option. ``@Crossroads
<text>`` (the bot's name, or ``@bot``) posts in the current channel mentioning the bot, whose
public answer shows as it arrives. ``help`` lists what is registered; ``quit`` or end of input
leaves.

Lines starting with ``:`` talk to the console itself rather than the bot: ``:time +7d`` moves the
bot's clock (so a year of DM check-ins arrives in minutes) as if the bot ran all along: it stops
at each instant something falls due, so every check-in and weekly post arrives on time
(``:time next`` moves to the next one);
``:down +3d`` moves it as if the bot was off meanwhile, so what fell due arrives late (or not at
all) when it comes back. ``:reply <text>`` writes a plain DM to the bot, ``:dms off`` /
``:dms on`` closes or opens the member's DMs. ``:as bob`` acts as another member of the server
(an ordinary one, without Manage Server, created on first use; the id comes from the name, so
bob is the same member in the next session), ``:as you`` goes back;
``:in #reflections`` runs the following commands in that channel, and ``:channel [#name]`` lists
a channel's recent posts. What the bot posts in the server's channels on its own (a shared
reflection, a weekly post) appears as it arrives, under the channel's name, as DMs do.

It works scripted too (``printf '/advice purpose\\n' | python bot.py sandbox``): nothing ever waits
for a choice that is not in the input; the next line is simply read, and EOF ends cleanly.
Whenever the bot breaks one of Discord's rules (a request the emulator rejects, an answer late or
twice), the console says so at once, on a line starting with ``⚠ The bot broke Discord's rules``.
Messages are rendered as Discord would show them: markdown becomes terminal styles on a terminal
and clean text otherwise, ``<t:…>`` timestamps become the member's local time. Rendering is done by
pure functions (``render_message``, ``render_markdown``, ``render_modal``, ...) so it can be tested
without a bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import re
import sys
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._interactions import CHANNEL_KINDS, DidNotRespond, Interaction, walk_components
from ._world import GUILD_CATEGORY
from .emulator import Emulator

JSON = Any
EPHEMERAL = 1 << 6
LOADING = 1 << 7
EMBED_WIDTH = 76
DM_POLL_SECONDS = 0.25  # how often DMs and channel posts are looked for
RECENT_POSTS = 10  # what :channel lists
REPLY_SNIPPET = 60  # characters of the message a reply answers, shown above it
ANSWER_TIMEOUT = 15.0  # deferred answers may take a while (charts)
QUIET_TIMEOUT = 5.0  # a deferred update that may never show anything
SETTLE_QUIET_SECONDS = 0.3  # at the end of input: no request for this long means the bot is done
SETTLE_MAX_SECONDS = 3.0
MAX_ADVANCE = timedelta(days=3660)  # one :time step; more is surely a typo
MAX_REPEAT = 1000
MAX_NESTING = 10  # markdown styles inside styles

log = logging.getLogger(__name__)


class BotClock(Protocol):
    """The bot's clock, as the console moves it (``python bot.py sandbox`` wires the real one).

    ``:time`` walks: from one instant something falls due to the next (``next_due``), it sets
    the clock there (``move_to``) and lets the bot deliver (``run_due``), so each check-in and
    weekly post arrives when it would for a bot that was running. ``:down`` only jumps.
    """

    def now(self) -> datetime:
        """The bot's current time (aware UTC)."""
        ...

    async def next_due(self, until: datetime) -> datetime | None:
        """The earliest instant, not after ``until``, at which the bot has a timed job to do
        (a check-in, a weekly post), or None."""
        ...

    async def move_to(self, instant: datetime) -> datetime:
        """Set the clock forward to ``instant`` (never back); returns the new now."""
        ...

    async def run_due(self) -> None:
        """Let the bot do what is due now, and return once it has."""
        ...


# --- how to render ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Display:
    """How to render: terminal styles or plain text, and the member's zone and clock."""

    ansi: bool = False  # ANSI styles (a terminal) or plain text without markdown marks
    zone: str | None = None  # the member's IANA zone; None or unknown = UTC
    now: datetime | None = None  # the bot's now, for relative timestamps; None = real now
    # How mentions read: "<#id>" -> "#general", "<@id>" -> "@you"; others stay as written.
    names: Mapping[str, str] = field(default_factory=dict)

    @property
    def tz(self) -> tzinfo:
        return member_tz(self.zone)

    def current(self) -> datetime:
        return self.now if self.now is not None else datetime.now(UTC)


Styles = frozenset[str]
Segment = tuple[str, Styles]
Line = list[Segment]  # one terminal line as styled runs of text

PLAIN: Styles = frozenset()
BOLD: Styles = frozenset({"bold"})
DIM: Styles = frozenset({"dim"})
_SGR = {
    "bold": "1",
    "dim": "2",
    "italic": "3",
    "underline": "4",
    "spoiler": "7",
    "strike": "9",
    "code": "36",
    "link": "34",
}
_RESET = "\x1b[0m"
_QUOTE_BAR = "▎ "


def member_tz(name: str | None) -> tzinfo:
    """The zone called ``name``; UTC for None or a name the system does not know."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return UTC


def _paint(line: Line, ansi: bool) -> str:
    if not ansi:
        return "".join(text for text, _ in line)
    out = []
    for styles, runs in itertools.groupby(line, key=lambda run: run[1]):
        text = "".join(t for t, _ in runs)
        if styles and text:
            codes = sorted({c for s in styles for c in _SGR[s].split(";")}, key=int)
            out.append(f"\x1b[{';'.join(codes)}m{text}{_RESET}")
        else:
            out.append(text)
    return "".join(out)


def _text(line: Line) -> str:
    return "".join(text for text, _ in line)


# --- time ---------------------------------------------------------------------------------

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_TIMESTAMP = re.compile(r"<t:(-?\d{1,13})(?::([tTdDfFR]))?>")


def format_timestamp(moment: datetime, style: str, display: Display | None = None) -> str:
    """A ``<t:…:style>`` timestamp as Discord shows it, in the member's zone (en-GB wording)."""
    display = display or Display()
    if style == "R":
        return relative_time(moment, display.current())
    local = moment.astimezone(display.tz)
    date = f"{local.day} {_MONTHS[local.month - 1]} {local.year}"
    clock = f"{local:%H:%M}"
    return {
        "t": clock,
        "T": f"{local:%H:%M:%S}",
        "d": f"{local:%d/%m/%Y}",
        "D": date,
        "f": f"{date} {clock}",
        "F": f"{_WEEKDAYS[local.weekday()]}, {date} {clock}",
    }[style]


def relative_time(moment: datetime, now: datetime) -> str:
    """ "in 3 days", "2 hours ago", "a few seconds ago": Discord's wording and thresholds."""
    ms = (moment - now) / timedelta(milliseconds=1)
    future = ms > 0
    days_exact = abs(ms) / 86_400_000
    months_exact = days_exact * 4800 / 146_097  # the average Gregorian month

    def rounded(x: float) -> int:
        return math.floor(x + 0.5)

    seconds, minutes = rounded(abs(ms) / 1000), rounded(abs(ms) / 60_000)
    hours, days = rounded(abs(ms) / 3_600_000), rounded(days_exact)
    months, years = rounded(months_exact), rounded(months_exact / 12)
    if seconds <= 44:
        phrase = "a few seconds"
    elif minutes <= 1:
        phrase = "a minute"
    elif minutes < 45:
        phrase = f"{minutes} minutes"
    elif hours <= 1:
        phrase = "an hour"
    elif hours < 22:
        phrase = f"{hours} hours"
    elif days <= 1:
        phrase = "a day"
    elif days < 26:
        phrase = f"{days} days"
    elif months <= 1:
        phrase = "a month"
    elif months < 11:
        phrase = f"{months} months"
    elif years <= 1:
        phrase = "a year"
    else:
        phrase = f"{years} years"
    return f"in {phrase}" if future else f"{phrase} ago"


def describe_moment(moment: datetime, zone: str | None) -> str:
    """``Tuesday 14 May 2024, 10:00 in Europe/Berlin``: a moment in the member's words."""
    tz = member_tz(zone)
    local = moment.astimezone(tz)
    when = (
        f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}, "
        f"{local:%H:%M}"
    )
    if not zone:
        return f"{when} UTC (set your zone with /timezone)"
    if tz is UTC and zone.upper() not in ("UTC", "ETC/UTC"):
        return f"{when} UTC ({zone} is not a zone this system knows)"
    return f"{when} in {zone}"


def later(now: datetime, step: timedelta, zone: str | None) -> datetime:
    """``now`` moved on by ``step``: whole days (``+1w``, ``+3d``) keep the member's time of day
    across a daylight-saving change, as a calendar would; hours and minutes are elapsed time."""
    if step % timedelta(days=1):
        return now + step
    return (now.astimezone(member_tz(zone)) + step).astimezone(UTC)


def describe_span(span: timedelta) -> str:
    """``3 days``, ``1 week 2 days``, ``1 day 12 hours``, ``30 minutes``: a duration in words."""
    minutes = int(span / timedelta(minutes=1))
    parts = []
    for unit, size in (("week", 7 * 24 * 60), ("day", 24 * 60), ("hour", 60), ("minute", 1)):
        count, minutes = divmod(minutes, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(parts) or "no time"


# --- Discord markdown -------------------------------------------------------------------------

# Inline rules, tried in this order at each position (as Discord's parser does); the last always
# matches. They follow Discord's own patterns, with one deliberate difference: an ``_`` right
# after a letter or digit never opens italics, so snake_case_names stay intact.
_INLINE: list[tuple[str, re.Pattern[str]]] = [
    ("escape", re.compile(r"\\([^0-9A-Za-z\s])")),
    ("code", re.compile(r"(`+)([\s\S]*?[^`])\1(?!`)")),
    ("autolink", re.compile(r"<(https?://[^\s>]+)>")),
    ("link", re.compile(r"\[((?:\\.|[^\[\]\\])+)\]\(\s*<?(https?://[^\s)>]+)>?\s*\)")),
    ("url", re.compile(r"https?://[^\s<]+[^<.,:;\"')\]\s]")),
    ("timestamp", _TIMESTAMP),
    ("mention", re.compile(r"<(?:#|@!?|@&)\d+>")),
    ("emoji", re.compile(r"<a?(:\w+:)\d+>")),
    ("bold", re.compile(r"\*\*([\s\S]+?)\*\*(?!\*)")),
    ("underline", re.compile(r"__([\s\S]+?)__(?!_)")),
    (
        "italic",
        re.compile(
            r"(?<![^\W_])_((?:__|\\[\s\S]|[^\\_])+?)_(?!\w)"
            r"|\*(?=\S)((?:\*\*|\\[\s\S]|\s+(?:\\[\s\S]|[^\s*\\]|\*\*)|[^\s*\\])+?)\*(?!\*)"
        ),
    ),
    ("strike", re.compile(r"~~(?=\S)([\s\S]*?\S)~~")),
    ("spoiler", re.compile(r"\|\|([\s\S]+?)\|\|")),
    ("text", re.compile(r"[\s\S]+?(?=[^0-9A-Za-z\s\u00c0-\uffff]|\w+:\S|$)")),
]
_WRAPPING = {"bold", "underline", "strike", "spoiler"}


def _inline(text: str, styles: Styles, display: Display, out: Line, depth: int = 0) -> Line:
    """Append ``text``'s inline markdown to ``out`` as styled runs (marks removed)."""
    if depth > MAX_NESTING:  # marks nested this deep are not formatting; show them as typed
        out.append((text, styles))
        return out
    pos = 0
    while pos < len(text):
        kind, match = _next_token(text, pos)
        pos = match.end()
        if kind in _WRAPPING:
            _inline(match[1], styles | {kind}, display, out, depth + 1)
        elif kind == "italic":
            inner = match[1] if match[1] is not None else match[2]
            _inline(inner, styles | {"italic"}, display, out, depth + 1)
        elif kind == "code":
            out.append((match[2], styles | {"code"}))
        elif kind in ("autolink", "url"):
            out.append((match[1] if kind == "autolink" else match[0], styles | {"link"}))
        elif kind == "link":
            _inline(match[1], styles | {"link", "underline"}, display, out, depth + 1)
            out.append((f" <{match[2]}>", styles | {"dim"}))
        elif kind == "timestamp":
            out.append((_timestamp(match, display), styles))
        elif kind == "mention":
            plain = match[0].replace("!", "")
            out.append((display.names.get(plain, match[0]), styles | {"bold"}))
        elif kind in ("escape", "emoji"):
            out.append((match[1], styles))
        else:
            out.append((match[0], styles))
    return out


def _next_token(text: str, pos: int) -> tuple[str, re.Match[str]]:
    for kind, pattern in _INLINE:
        match = pattern.match(text, pos)
        if match and match.end() > pos:
            return kind, match
    raise AssertionError("the text rule matches any non-empty text")


def _timestamp(match: re.Match[str], display: Display) -> str:
    try:
        moment = datetime.fromtimestamp(int(match[1]), UTC)
    except (OverflowError, OSError, ValueError):
        return match[0]  # out of range: shown as typed
    return format_timestamp(moment, match[2] or "f", display)


_CODE_BLOCK = re.compile(r"```(?:[\w+#.-]*\n)?([\s\S]*?)\n?```")
_HEADING = re.compile(r"(#{1,3}) +(\S.*)")
_SUBTEXT = re.compile(r"-# +(\S.*)")
_BULLET = re.compile(r"( *)[-*] +(\S.*)")
_NUMBERED = re.compile(r"( *)(\d{1,9})\. +(\S.*)")


def markdown_lines(text: str, display: Display | None = None) -> list[Line]:
    """Discord markdown as styled terminal lines: headings, subtext, quotes, lists, code blocks,
    and the inline marks (bold, italics, underline, strikethrough, code, links, timestamps)."""
    display = display or Display()
    lines: list[Line] = []
    pos = 0
    for block in _CODE_BLOCK.finditer(text):
        before = text[pos : block.start()]
        pos = block.end()
        if before.strip("\n") or before.count("\n") > 1:
            lines += _prose(before.removeprefix("\n").removesuffix("\n"), display)
        lines += [[("  " + code, frozenset({"code"}))] for code in block[1].split("\n")]
        if text[pos : pos + 1] == "\n":
            pos += 1
    if pos < len(text) or not lines:
        lines += _prose(text[pos:], display)
    return lines


def _prose(text: str, display: Display) -> list[Line]:
    lines: list[Line] = []
    quote_rest = False
    for raw in text.split("\n"):
        line, quoted = raw, quote_rest
        if not quoted and (line == ">>>" or line.startswith(">>> ")):
            quote_rest = quoted = True
            line = line[4:]
        elif not quoted and (line == ">" or line.startswith("> ")):
            quoted = True
            line = line[2:]
        out: Line = [(_QUOTE_BAR, DIM)] if quoted else []
        styles = PLAIN
        if match := _HEADING.fullmatch(line):
            styles = frozenset({"bold", "underline"}) if len(match[1]) == 1 else BOLD
            line = match[2]
        elif match := _SUBTEXT.fullmatch(line):
            styles, line = DIM, match[1]
        elif match := _BULLET.fullmatch(line):
            out.append((match[1] + "• ", PLAIN))
            line = match[2]
        elif match := _NUMBERED.fullmatch(line):
            out.append((f"{match[1]}{match[2]}. ", PLAIN))
            line = match[3]
        lines.append(_inline(line, styles, display, out))
    return lines


def render_markdown(text: str, display: Display | None = None) -> str:
    """Discord markdown as Discord would show it: terminal styles if ``display.ansi``, else clean
    text without the marks; ``<t:unix:style>`` timestamps as the member's local time."""
    display = display or Display()
    return "\n".join(_paint(line, display.ansi) for line in markdown_lines(text, display))


_HANG = re.compile(r"( *)(▎ )?( *(?:• |\d+\. )?)")


def _wrap(line: Line, width: int) -> list[Line]:
    """Word-wrap one styled line; continuations hang under the text of a bullet or a quote."""
    plain = _text(line)
    if len(plain) <= width:
        return [line]
    styles = [s for text, s in line for _ in text]
    hang_match = _HANG.match(plain)
    assert hang_match is not None  # everything in it is optional
    hang: Line = [(hang_match[1], PLAIN)]
    if hang_match[2]:
        hang.append((_QUOTE_BAR, DIM))
    hang.append((" " * len(hang_match[3]), PLAIN))
    next_limit = max(width - len(hang_match[0]), 20)
    ranges: list[tuple[int, int]] = []
    start = end = 0
    limit, filled = width, False
    for word in re.finditer(r"\S+", plain):
        first, last = word.span()
        while True:
            if not filled:
                if ranges:
                    start = first
                if last - start <= limit:
                    end, filled = last, True
                    break
                cut = max(start + limit, first + 1)  # a word longer than a line is broken
                ranges.append((start, cut))
                first, limit = cut, next_limit
            elif last - start <= limit:
                end = last
                break
            else:
                ranges.append((start, end))
                filled, limit = False, next_limit
    if filled:
        ranges.append((start, end))
    wrapped: list[Line] = []
    for i, (a, b) in enumerate(ranges):
        piece: Line = [
            ("".join(c for c, _ in group), s)
            for s, group in itertools.groupby(
                zip(plain[a:b], styles[a:b], strict=True), key=lambda cs: cs[1]
            )
        ]
        wrapped.append(piece if i == 0 else [*hang, *piece])
    return wrapped


# --- messages -----------------------------------------------------------------------------


def actions(message: dict[str, JSON]) -> list[dict[str, JSON]]:
    """The components a member can use on ``message``, in the order they are numbered."""
    return [
        c
        for c in walk_components(message.get("components") or [])
        if (c.get("type") == 2 and c.get("style") != 5) or c.get("type") == 3
    ]


def _embed_lines(embed: dict[str, JSON], display: Display) -> list[Line]:
    lines: list[Line] = []
    author = (embed.get("author") or {}).get("name")
    if author:  # Discord shows author names and footers without markdown
        lines.append([(str(author), BOLD)])
    if embed.get("title"):
        lines.append(_inline(str(embed["title"]), BOLD, display, [("■ ", PLAIN)]))
    if embed.get("description"):
        lines += markdown_lines(str(embed["description"]), display)
    for f in embed.get("fields") or []:
        lines.append([])
        lines.append(_inline(str(f.get("name", "")), BOLD, display, [("▸ ", PLAIN)]))
        lines += [
            [("  ", PLAIN), *line] for line in markdown_lines(str(f.get("value", "")), display)
        ]
    image = str((embed.get("image") or {}).get("url") or "")
    if image.startswith("attachment://"):  # one of the message's files, listed with 📎 below
        lines.append([(f"[image: {image.removeprefix('attachment://')}, 📎 below]", DIM)])
    elif image:
        lines.append([(f"[image: {image}]", DIM)])
    footer = (embed.get("footer") or {}).get("text")
    if footer:
        lines += [[], [(f"— {footer}", DIM)]]
    wrapped = [piece for line in lines for piece in _wrap(line, EMBED_WIDTH)]
    rule = "─" * (min(max((len(_text(w)) for w in wrapped), default=0), EMBED_WIDTH) + 1)
    return [[("╭" + rule, PLAIN)], *([("│ ", PLAIN), *w] for w in wrapped), [("╰" + rule, PLAIN)]]


def render_embed(embed: dict[str, JSON], display: Display | None = None) -> str:
    """An embed in a box: author, title, description, fields, image, footer."""
    display = display or Display()
    return "\n".join(_paint(line, display.ansi) for line in _embed_lines(embed, display))


def _action_label(component: dict[str, JSON]) -> str:
    if component.get("type") == 3:
        label = component.get("placeholder") or "Choose…"
        return f"{label} (menu)"
    emoji = (component.get("emoji") or {}).get("name")
    label = " ".join(x for x in (emoji, component.get("label")) if x) or component.get(
        "custom_id", ""
    )
    return f"{label} (disabled)" if component.get("disabled") else str(label)


def render_actions(message: dict[str, JSON]) -> str:
    """``[1] Reflect  [2] Next ▶``, plus link buttons as plain URLs."""
    parts = [f"[{i}] {_action_label(c)}" for i, c in enumerate(actions(message), 1)]
    links = [
        f"{c.get('label', 'link')} <{c.get('url')}>"
        for c in walk_components(message.get("components") or [])
        if c.get("type") == 2 and c.get("style") == 5
    ]
    return "  ".join(parts + links)


def render_message(
    message: dict[str, JSON],
    display: Display | None = None,
    saved: Mapping[str, str | Path] | None = None,
) -> str:
    """A bot message as Discord would show it: content, embeds, attachments, buttons; marks
    ephemeral ones. ``saved`` maps attachment filenames to where the console saved them."""
    display = display or Display()
    saved = saved or {}
    flags = int(message.get("flags") or 0)
    author = (message.get("author") or {}).get("username", "bot")
    header: Line = [(author, BOLD)]
    if flags & EPHEMERAL:
        header.append((" (only you can see this)", DIM))
    body: list[Line] = []
    reference = message.get("referenced_message")
    if isinstance(reference, dict):
        body.append(_replied_line(reference, display))
    if flags & LOADING:
        body.append([(f"{author} is thinking…", DIM)])
    if message.get("content"):
        body += markdown_lines(str(message["content"]), display)
    for component in walk_components(message.get("components") or []):
        if component.get("type") == 10:  # text display (components v2)
            body += markdown_lines(str(component.get("content", "")), display)
    for embed in message.get("embeds") or []:
        body += _embed_lines(embed, display)
    for attachment in message.get("attachments") or []:
        name = attachment["filename"]
        line = f"📎 {name} ({_size(int(attachment.get('size', 0)))})"
        body.append([(line, PLAIN)] + ([(f" → {saved[name]}", BOLD)] if name in saved else []))
    buttons = render_actions(message)
    if buttons:
        body.append([(buttons, PLAIN)])
    lines = [[("┌ ", PLAIN), *header], *([("│ ", PLAIN), *line] for line in body), [("└", PLAIN)]]
    return "\n".join(_paint(line, display.ansi) for line in lines)


def _replied_line(reference: dict[str, JSON], display: Display) -> Line:
    """``↪ ada: should I do a PhD?``: the message a reply answers, on one short line."""
    name = (reference.get("author") or {}).get("username") or "someone"
    first = str(reference.get("content") or "").strip().split("\n")[0]
    text = _text(_inline(first, PLAIN, display, [])) if first else "(no text)"
    if len(text) > REPLY_SNIPPET:
        text = text[: REPLY_SNIPPET - 1].rstrip() + "…"
    return [(f"↪ {name}: {text}", DIM)]


def render_post(
    message: dict[str, JSON],
    channel_name: str,
    display: Display | None = None,
    saved: Mapping[str, str | Path] | None = None,
) -> str:
    """A public post in a server channel, under the channel's name (as a DM is under ✉)."""
    return f"#{channel_name}\n" + render_message(message, display, saved)


def render_channel(
    channel_name: str, messages: list[dict[str, JSON]], display: Display | None = None
) -> str:
    """A channel's recent posts, oldest first, or that there are none."""
    if not messages:
        return f"(no posts in #{channel_name} yet)"
    shown = messages[-RECENT_POSTS:]
    header = f"#{channel_name}: the last {len(shown)} of {len(messages)} posts"
    if len(shown) == len(messages):
        header = f"#{channel_name}: {len(shown)} post{'s' if len(shown) != 1 else ''}"
    return "\n".join([header, *(render_message(m, display) for m in shown)])


def render_channels(channels: list[dict[str, JSON]], here: int) -> str:
    """The server's channels, with their kind, the current one marked."""
    return "\n".join(
        f"{'→' if int(c['id']) == here else ' '} #{c['name']} ({CHANNEL_KINDS[c['type']]})"
        for c in channels
    )


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def attachment_path(directory: Path, message: dict[str, JSON], filename: str) -> Path:
    """Where an attachment is saved: ``<message id>-<filename>``, unique and inside ``directory``
    whatever the bot called the file."""
    safe = re.sub(r"[^\w.-]", "_", Path(filename.replace("\\", "/")).name).lstrip(".") or "file"
    return directory / f"{message.get('id', 'message')}-{safe}"


def modal_fields(modal: dict[str, JSON]) -> list[tuple[dict[str, JSON], dict[str, JSON]]]:
    """(field, wrapper) for every input: the wrapper is the Label (or the field itself)."""
    fields = []
    for top in modal.get("components") or []:
        if top.get("type") == 18 and isinstance(top.get("component"), dict):
            fields.append((top["component"], top))
        for inner in top.get("components") or []:
            fields.append((inner, inner))
    return [(f, w) for f, w in fields if "custom_id" in f]


def render_field(component: dict[str, JSON], wrapper: dict[str, JSON]) -> str:
    """One modal field's prompt: label, description, placeholder, limits, prefilled value."""
    label = wrapper.get("label") or component.get("label") or component["custom_id"]
    lines = [f"» {label}" + ("" if component.get("required", True) else " (optional)")]
    if wrapper.get("description"):
        lines.append(f"  {wrapper['description']}")
    if component.get("type") == 4:
        low, high = component.get("min_length"), component.get("max_length")
        if low or high:
            lines.append(f"  {low or 0}–{high or 4000} characters")
        if component.get("placeholder"):
            lines.append(f"  e.g. {component['placeholder']}")
        if component.get("value"):
            lines.append(f"  current: {component['value']}  (empty line keeps it)")
        if component.get("style") == 2:
            lines.append("  (type \\n for a new line)")
    else:
        for i, option in enumerate(component.get("options") or [], 1):
            default = " (default)" if option.get("default") else ""
            description = f" — {option['description']}" if option.get("description") else ""
            lines.append(f"  {i}) {option.get('label')}{description}{default}")
        low, high = component.get("min_values", 1), component.get("max_values", 1)
        lines.append("  pick a number" if high == 1 else f"  pick {low}–{high} numbers, e.g. 1,3")
    return "\n".join(lines)


def _modal_texts(modal: dict[str, JSON], display: Display) -> list[str]:
    return [
        "│ " + line
        for component in walk_components(modal.get("components") or [])
        if component.get("type") == 10
        for line in render_markdown(str(component.get("content", "")), display).splitlines()
    ]


def render_modal(modal: dict[str, JSON], display: Display | None = None) -> str:
    """The modal's title and its fields, as the prompts the console will show."""
    display = display or Display()
    parts = [f"┌ {modal.get('title', 'Form')}", *_modal_texts(modal, display)]
    parts += [render_field(f, w) for f, w in modal_fields(modal)]
    return "\n".join(parts)


def render_choices(choices: list[dict[str, JSON]]) -> str:
    if not choices:
        return "(no suggestions)"
    return "\n".join(f"  {i}) {c['name']}" for i, c in enumerate(choices, 1))


def render_commands(commands: list[dict[str, JSON]]) -> str:
    """Every invocable command line with its options: ``/journal list [point] — ...``."""
    lines = []
    for command in sorted(commands, key=lambda c: c["name"]):
        if command.get("type", 1) != 1:
            continue
        for path, leaf in _leaves(command):
            options = " ".join(
                o["name"] + ":…" if o.get("required") else f"[{o['name']}]"
                for o in leaf.get("options") or []
            )
            usage = " ".join(x for x in ("/" + " ".join(path), options) if x)
            lines.append(f"{usage} — {leaf.get('description', '')}")
    return "\n".join(lines) or "(no commands registered yet)"


def _leaves(node: dict[str, JSON], path: tuple[str, ...] = ()) -> list[tuple[list[str], JSON]]:
    path = (*path, node["name"])
    subs = [o for o in node.get("options") or [] if o.get("type") in (1, 2)]
    if not subs:
        return [(list(path), node)]
    return [leaf for sub in subs for leaf in _leaves(sub, path)]


_WORD = re.compile(r"\s*(\S+)")
_OPTION_START = re.compile(r"(?<!\S)([\w-]+):")
_QUOTES = "\"'"


def parse_command(
    line: str, commands: Sequence[Mapping[str, JSON]] = ()
) -> tuple[str, dict[str, str]]:
    """``/decide leaning:leaning yes why:Impact matters`` -> ("decide", {"leaning": "leaning
    yes", "why": "Impact matters"}), as Discord's client reads it.

    The words before the first ``name:`` are the command and its subcommands. A value runs
    until the next `` name:`` that names another of the command's options not given yet (with
    ``commands``, the registered definitions; without, any ``name:``), so it may hold spaces
    and colons. A value in quotes ends at its closing quote (``why:"a: b"``).
    """
    text = line.strip().lstrip("/")
    words: list[str] = []
    pos = 0
    while (word := _WORD.match(text, pos)) and ":" not in word[1] and word[1][0] not in _QUOTES:
        words.append(word[1])
        pos = word.end()
    if not words:
        raise ValueError("type a command, like /help")
    rest = text[pos:].strip()
    if rest and not _OPTION_START.match(rest):
        raise ValueError(f"cannot read {rest.split()[0]!r}: write options as name:value")
    known = _option_names(commands, words)
    options: dict[str, str] = {}
    at = 0
    while at < len(rest):
        start = _OPTION_START.match(rest, at)
        assert start is not None  # the loop only stops here at an option's name
        name, value_at = start[1], start.end()
        end, value = _option_value(rest, value_at, known, options.keys() | {name})
        options[name] = value
        at = end
    return " ".join(words), options


def _option_value(rest: str, at: int, known: set[str] | None, taken: set[str]) -> tuple[int, str]:
    """Where the value starting at ``at`` ends (the next option's name, or the end) and the
    value itself, unquoted."""

    def next_option(start: int) -> int:
        for found in _OPTION_START.finditer(rest, start):
            name = found[1]
            if name not in taken and (known is None or name in known):
                return found.start()
        return len(rest)

    quote = rest[at : at + 1]
    if quote and quote in _QUOTES:
        close = rest.find(quote, at + 1)
        if close != -1:
            end = next_option(close + 1)
            if not rest[close + 1 : end].strip():  # nothing but the quoted value
                return end, rest[at + 1 : close]
    end = next_option(at)
    return end, rest[at:end].strip()


def _option_names(commands: Sequence[Mapping[str, JSON]], words: list[str]) -> set[str] | None:
    """The option names of the command ``words`` name, or None when it is not known."""
    options = _leaf_options(commands, words)
    return None if options is None else {o["name"] for o in options}


def _leaf_options(
    commands: Sequence[Mapping[str, JSON]], words: list[str]
) -> list[Mapping[str, JSON]] | None:
    """The options (not subcommands) of the command ``words`` name, or None when unknown."""
    node: Mapping[str, JSON] | None = next(
        (c for c in commands if c.get("name") == words[0] and c.get("type", 1) == 1), None
    )
    for word in words[1:]:
        if node is None:
            return None
        node = next(
            (
                o
                for o in node.get("options") or []
                if o.get("name") == word and o.get("type") in (1, 2)
            ),
            None,
        )
    if node is None:
        return None
    return [o for o in node.get("options") or [] if o.get("type") not in (1, 2)]


def pick_choices(
    name: str, options: Mapping[str, str], commands: Sequence[Mapping[str, JSON]] = ()
) -> dict[str, str]:
    """Options with choices take what the member picks by name, as Discord's client shows them
    (``weekday:Wednesday`` sends the choice's value, 2); a value typed as it is stays."""
    definitions = {o["name"]: o for o in _leaf_options(commands, name.split()) or []}
    picked = dict(options)
    for option, typed in options.items():
        choices = (definitions.get(option) or {}).get("choices") or []
        if not choices or typed.startswith("?"):
            continue
        wanted = typed.strip().casefold()
        by_name = [c for c in choices if str(c.get("name", "")).casefold() == wanted]
        if by_name:
            picked[option] = str(by_name[0]["value"])
        elif not any(str(c.get("value")).casefold() == wanted for c in choices):
            names = ", ".join(str(c.get("name")) for c in choices)
            raise ValueError(f"pick {option} from its choices: {names}")
    return picked


_TIME_EXAMPLE = "e.g. :time +7d, +3h, +30m, +2w, +1d12h, or +1w x52 for a year week by week"
_UNIT_MINUTES = {"w": 7 * 24 * 60, "d": 24 * 60, "h": 60, "m": 1}


def parse_advance(spec: str) -> tuple[timedelta, int]:
    """``+7d`` / ``+1d12h`` / ``+1w x52`` -> (one step, how many steps). Only forward."""
    words = spec.lower().split()
    times = 1
    if len(words) > 1 and re.fullmatch(r"[x×*]\d+", words[-1]):
        times = int(words.pop()[1:])
        if not 1 <= times <= MAX_REPEAT:
            raise ValueError(f"repeat 1 to {MAX_REPEAT} times, {_TIME_EXAMPLE}")
    text = "".join(words)
    if not text:
        raise ValueError(f"say how far to move the clock, {_TIME_EXAMPLE}")
    if text.startswith("-"):
        raise ValueError(f"time only moves forward here, {_TIME_EXAMPLE}")
    amount = text.removeprefix("+")
    if not re.fullmatch(r"(?:\d{1,7}[wdhm])+", amount):
        raise ValueError(f"cannot read {spec.strip()!r} as a duration, {_TIME_EXAMPLE}")
    minutes = sum(int(n) * _UNIT_MINUTES[u] for n, u in re.findall(r"(\d+)([wdhm])", amount))
    if not minutes:
        raise ValueError(f"move the clock by at least a minute, {_TIME_EXAMPLE}")
    if minutes > MAX_ADVANCE / timedelta(minutes=1):
        raise ValueError(f"at most {MAX_ADVANCE.days} days at a time, {_TIME_EXAMPLE}")
    return timedelta(minutes=minutes), times


# --- the REPL ------------------------------------------------------------------------------

WELCOME = (
    "You are a member of the test server. Write to the bot in your own words (a line that is "
    "not a command goes to it as a DM), type a slash command (/help), a number to press a "
    "button, `help` to list everything, `quit` to leave.\n"
    "Console: `@bot <text>` mentions the bot in the current channel, `:time +7d` moves the "
    "bot's clock, `:down +3d` has the bot off for a while, `:reply <text>` writes to the bot "
    "in DMs (so does any line that is not a command), "
    "`:dms off` / `:dms on` closes or opens your DMs, `:as bob` acts as another member, "
    "`:in #reflections` runs commands in another channel, `:channel` shows a channel's posts."
)
CONSOLE_HELP = """Console commands (they talk to the console, not the bot):
  :time +7d       move the bot's clock forward (+30m, +3h, +2w, +1d12h) as if it ran all
                  along: each check-in and weekly post arrives on time and shows under its
                  time; add a repeat to step through time, e.g. :time +1w x52 for a year
  :time next      move the bot's clock to the next check-in or weekly post due, and show it
                  (:time next x6 for the next six)
  :down +3d       the bot is off that long, then comes back: what fell due meanwhile arrives
                  late (at most one check-in, marked late), or not at all
  @Crossroads <text>  post <text> in the current channel mentioning the bot (@bot <text>
                  too); its public answer shows as it arrives
  :reply <text>   write a plain DM to the bot (a line that is no command does the same)
  :dms off|on     close or open your DMs to the bot
  :as <name>      act as another member of the server: an ordinary one (no Manage Server),
                  created on first use; :as you is you again
  :in #channel    run the following commands in that channel; :in alone lists the channels
  :channel [#name]  show the channel's recent posts (the current channel's by default)
  <number>        press a button (or pick a suggestion) on the last message
  help            this list; quit leaves (so does the end of input)
What the bot posts in the server's channels appears as it arrives, under the channel's name."""


def _wants_styles(stream: TextIO) -> bool:
    """Terminal styles only on a terminal, and never when NO_COLOR is set."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _State:
    current: dict[str, JSON] | None = None  # the last message with buttons
    pending_choices: tuple[str, dict[str, str], str, list[dict[str, JSON]]] | None = None
    seen: set[str] = field(default_factory=set)  # messages shown, or never to be shown
    dms_shown: int = 0  # DMs from the bot printed so far
    posts_shown: int = 0  # the bot's posts in the server's channels printed so far
    zone: str | None = None  # the member's zone as last reported
    dms_closed: set[int] = field(default_factory=set)  # members who closed them with :dms off
    violations_shown: int = 0  # the emulator's violations printed so far


class _Console:
    def __init__(
        self,
        emu: Emulator,
        guild_id: int,
        channel_id: int,
        user_id: int,
        stdin: TextIO,
        stdout: TextIO,
        *,
        clock: BotClock | None = None,
        member_zone: Callable[[], Awaitable[str | None]] | None = None,
        files_dir: Path | None = None,
    ) -> None:
        self.emu = emu
        self.guild_id = guild_id
        self.channel_id = self.first_channel_id = channel_id  # where commands run (:in)
        self.user_id = user_id  # who runs them (:as)
        self.members = {"you": user_id}  # name -> id of those :as has been
        self.stdin = stdin
        self.stdout = stdout
        self.clock = clock
        self.now = clock.now if clock is not None else _utc_now
        self.member_zone = member_zone
        self.files_dir = files_dir
        self.interactive = stdin.isatty()
        self.ansi = _wants_styles(stdout)
        # What was there before the console started is history, not news.
        old = emu.dm_messages(user_id) + [m for c in self._channels() for m in self._posts(c)]
        self.state = _State(seen={str(m["id"]) for m in old})
        self._news_lock = asyncio.Lock()
        self._zone_failed = False

    def say(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    async def readline(self, prompt: str | None = None) -> str | None:
        """One line of input, or None at EOF (the event loop keeps running meanwhile)."""
        if self.interactive:
            self.stdout.write(prompt or self._prompt())
            self.stdout.flush()
        line = await asyncio.get_running_loop().run_in_executor(None, self.stdin.readline)
        return None if line == "" else line.rstrip("\n")

    async def run(self) -> None:
        self.say(WELCOME)
        if self.files_dir is not None:
            self.say(f"Files the bot sends you are saved in {self.files_dir}.")
        watcher = asyncio.create_task(self._watch())
        try:
            while (line := await self.readline()) is not None:
                line = line.strip()
                if line in ("quit", "exit"):
                    break
                if line:
                    await self.handle(line)
                await self.show_news()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await self.settle()
        await self.show_news()

    async def settle(self) -> None:
        """Let the bot finish what the last command started (a DM often follows the answer)."""
        deadline = asyncio.get_running_loop().time() + SETTLE_MAX_SECONDS
        seen = -1
        while seen != len(self.emu.requests) and asyncio.get_running_loop().time() < deadline:
            seen = len(self.emu.requests)
            await asyncio.sleep(SETTLE_QUIET_SECONDS)

    async def display(self) -> Display:
        """How to render right now: asks the bot for the member's zone each time (it may have
        just changed with /timezone)."""
        if self.member_zone is not None:
            try:
                self.state.zone = await self.member_zone()
            except Exception:  # keep the last zone: rendering must not break the console
                if not self._zone_failed:
                    log.warning("could not read the member's time zone", exc_info=True)
                self._zone_failed = True
        names = {f"<#{c['id']}>": f"#{c['name']}" for c in self._channels()}
        names.update({f"<@{i}>": f"@{name}" for name, i in self.members.items()})
        names[f"<@{self.emu.bot_user_id}>"] = f"@{self.emu.bot_name}"
        return Display(ansi=self.ansi, zone=self.state.zone, now=self.now(), names=names)

    async def handle(self, line: str) -> None:
        try:
            if line in ("?", "help", "commands"):
                self.say(render_commands(self._commands()) + "\n\n" + self._console_help())
            elif line.isdigit():
                await self.pick(int(line))
            elif line.startswith("/"):
                await self.command(line)
            elif line.startswith(":"):
                await self.console_command(line[1:].strip())
            elif (text := self._addressed(line)) is not None:
                await self.mention(text)
            else:  # words of one's own: the bot is chat-style, so they go to it as a DM
                await self.reply(line)
        except (LookupError, ValueError, PermissionError, DidNotRespond) as error:
            self.say(f"✗ {error}")
        except TimeoutError:
            self.say("✗ The bot did not answer in time.")

    # --- console commands (lines starting with ':') ---

    async def console_command(self, line: str) -> None:
        name, _, rest = line.partition(" ")
        name, rest = name.lower(), rest.strip()
        if name == "time":
            await self.move_time(rest)
        elif name == "down":
            await self.go_down(rest)
        elif name == "dms":
            self.set_dms(rest.lower())
        elif name == "reply":
            await self.reply(rest)
        elif name == "as":
            self.act_as(rest)
        elif name == "in":
            self.move_to(rest)
        elif name == "channel":
            await self.list_posts(rest)
        elif name in ("help", "commands", "?", ""):
            self.say(self._console_help())
        else:
            raise ValueError(
                f"there is no console command :{name}; try :time +7d, :down +3d, :reply <text>, "
                ":dms off, :as bob, :in #general or :channel (`help` lists everything)"
            )

    async def move_time(self, spec: str) -> None:
        """``:time``: walk the bot's clock forward, step by step, as if it ran all along."""
        if self.clock is None:
            self.say("✗ Time cannot move here: this console was started without the bot's clock.")
            return
        words = spec.lower().split()
        to_next = bool(words) and words[0] == "next"
        if to_next:  # "next" or "next x3": to what falls due next, as many times
            if len(words) > 2 or (len(words) == 2 and not re.fullmatch(r"[x×*]\d+", words[1])):
                raise ValueError("say :time next, or :time next x3 for the next three")
            step, times = timedelta(0), parse_advance(" ".join(["+1m", *words[1:]]))[1]
        else:
            step, times = parse_advance(spec)
        before = (self.state.dms_shown, self.state.posts_shown)
        zone = (await self.display()).zone
        for i in range(times):
            try:
                now = self.clock.now()
                target = later(now, step, zone)
                if to_next:
                    due = await self.clock.next_due(now + MAX_ADVANCE)
                    if due is None:
                        self.say("(nothing is due: no check-in or weekly post is scheduled)")
                        break
                    target = max(due, now)
                moved_to = await self._walk(self.clock, target)
            except Exception as error:  # the bot's side failed: say so, keep the console
                log.warning("could not move the bot's clock", exc_info=True)
                self.say(f"✗ The bot's clock did not move: {error}")
                return
            zone = (await self.display()).zone
            steps = f"  [{i + 1}/{times}]" if times > 1 else ""
            self.say(f"🕒 It is now {describe_moment(moved_to, zone)}.{steps}")
            await self.show_news()
        self._arrived(before, several=times > 1)

    async def _walk(self, clock: BotClock, target: datetime) -> datetime:
        """Stop at each instant something falls due before ``target``, let the bot deliver it
        there, and show what arrived under that time; then move on to ``target``."""
        last: datetime | None = None
        while (due := await clock.next_due(target)) is not None:
            if last is not None and due <= last:
                # The bot did not settle what was due (it will on its own loop): don't spin.
                log.warning("timed jobs still due at %s after a run; moving on", due)
                break
            last = due
            async with self._news_lock:
                await clock.move_to(due)
                await clock.run_due()
                await self._show_fresh(heading=due)
        moved_to = await clock.move_to(target)
        await clock.run_due()
        return moved_to

    async def go_down(self, spec: str) -> None:
        """``:down``: the bot is off for a while; then it comes back and catches up."""
        if self.clock is None:
            self.say("✗ Time cannot move here: this console was started without the bot's clock.")
            return
        step, times = parse_advance(spec)
        if times != 1:
            raise ValueError("say how long the bot is off, once, e.g. :down +3d")
        before = (self.state.dms_shown, self.state.posts_shown)
        zone = (await self.display()).zone
        try:
            async with self._news_lock:
                moved_to = await self.clock.move_to(later(self.clock.now(), step, zone))
                self.say(
                    f"🕒 The bot was off for {describe_span(step)}. It is back on "
                    f"{describe_moment(moved_to, zone)} and catches up on what it missed."
                )
                await self.clock.run_due()
                await self._show_fresh()
            if (self.state.dms_shown, self.state.posts_shown) == before:
                # Held back (quiet hours, say): tell when, so it does not seem lost.
                soon = await self.clock.next_due(moved_to + timedelta(days=1))
                if soon is not None and soon > moved_to:
                    self.say(
                        f"(nothing yet; the bot has something due {describe_moment(soon, zone)}: "
                        "`:time next` goes there)"
                    )
                    return
        except Exception as error:
            log.warning("could not move the bot's clock", exc_info=True)
            self.say(f"✗ The bot's clock did not move: {error}")
            return
        self._arrived(before, several=False)

    def _arrived(self, before: tuple[int, int], *, several: bool) -> None:
        """How much arrived while time moved: nothing (and why it may be), or a count."""
        dms = self.state.dms_shown - before[0]
        posts = self.state.posts_shown - before[1]
        if not dms:
            closed = ""
            if self.user_id in self.state.dms_closed:
                closed = "; your DMs are closed (`:dms on` opens them)"
            self.say(f"(no new direct messages{closed})")
        elif several:
            counted = [f"{dms} new direct message{'s' if dms != 1 else ''}"]
            if posts:
                counted.append(f"{posts} post{'s' if posts != 1 else ''} in the server")
            self.say(f"({' and '.join(counted)})")

    def set_dms(self, state: str) -> None:
        if state not in ("on", "off"):
            raise ValueError("say :dms off (close your DMs to the bot) or :dms on (open them)")
        self.emu.set_dms_open(self.user_id, state == "on")
        if state == "on":
            self.state.dms_closed.discard(self.user_id)
            self.say("✓ Your DMs are open: the bot can DM you again (check-ins arrive here).")
        else:
            self.state.dms_closed.add(self.user_id)
            self.say(
                "✓ Your DMs are closed: the bot can no longer DM you. Discord refuses its "
                "messages (error 50007), so check-ins will not arrive. `:dms on` opens them."
            )

    async def reply(self, text: str) -> None:
        if not text:
            raise ValueError("say what to write, e.g. :reply I want to understand how minds work")
        before = self.state.dms_shown
        sent = await self.emu.send_dm(self.user_id, text.replace("\\n", "\n"))
        self.state.seen.add(str(sent["id"]))  # never shown back as a DM from the bot
        await self.settle()
        await self.show_news()
        if self.state.dms_shown == before:
            self.say("(the bot has not answered)")

    def _addressed(self, line: str) -> str | None:
        """What follows ``@Crossroads`` (the bot's name, any case) or ``@bot`` at the start of
        the line, or None when the line does not start with either."""
        head, _, rest = line.partition(" ")
        if head.lower() in (f"@{self.emu.bot_name}".lower(), "@bot"):
            return rest.strip()
        return None

    async def mention(self, text: str) -> None:
        """Post ``<@bot> text`` in the current channel, as a member mentioning the bot, and
        show the bot's public answer when it comes."""
        if not text:
            raise ValueError(
                f"say what to write, e.g. @{self.emu.bot_name} should I become a researcher?"
            )
        before = self.state.posts_shown
        sent = await self.emu.mention_bot(self.user_id, self.channel_id, text.replace("\\n", "\n"))
        self.state.seen.add(str(sent["id"]))
        await self.settle()
        await self.show_news()
        if self.state.posts_shown == before:
            self.say("(the bot has not answered)")

    def _commands(self) -> list[dict[str, JSON]]:
        """The commands a member here could type: the server's own, then the global ones."""
        return self.emu.registered_commands(self.guild_id) + self.emu.registered_commands()

    def _console_help(self) -> str:
        return CONSOLE_HELP.replace("@Crossroads", f"@{self.emu.bot_name}")

    # --- talking to the bot ---

    async def command(self, line: str) -> None:
        commands = self._commands()
        name, options = parse_command(line, commands)
        options = pick_choices(name, options, commands)
        self.state.pending_choices = None
        asked = [k for k, v in options.items() if v.startswith("?")]
        if asked:
            focused = asked[0]
            typed = options.pop(focused)[1:]
            choices = await self.emu.autocomplete(
                self.user_id,
                name,
                focused=focused,
                value=typed,
                options=options,
                guild_id=self.guild_id,
                channel_id=self.channel_id,
            )
            self.say(render_choices(choices))
            if choices:
                self.say("Pick one by number.")
                self.state.pending_choices = (name, options, focused, choices)
            return
        await self.run_slash(name, options)

    async def run_slash(self, name: str, options: Mapping[str, object]) -> None:
        interaction = await self.emu.slash(
            self.user_id,
            name,
            options=dict(options),
            guild_id=self.guild_id,
            channel_id=self.channel_id,
        )
        await self.show(interaction)

    async def pick(self, number: int) -> None:
        pending, self.state.pending_choices = self.state.pending_choices, None
        if pending is not None:
            name, options, focused, choices = pending
            if not 1 <= number <= len(choices):
                raise ValueError(f"pick 1–{len(choices)}")
            options = {**options, focused: str(choices[number - 1]["value"])}
            await self.run_slash(name, options)
            return
        message = self.state.current
        usable = actions(message) if message else []
        if message is None or not 1 <= number <= len(usable):
            raise ValueError("there is no such button here")
        component = usable[number - 1]
        if component["type"] == 2:
            interaction = await self.emu.click(self.user_id, message, component["custom_id"])
        else:
            self.say(render_field(component, component))
            answer = await self.readline("choice> ")
            if answer is None:
                return
            values = self._option_values(component, answer)
            interaction = await self.emu.select(
                self.user_id, message, component["custom_id"], values
            )
        await self.show(interaction)

    async def show(self, interaction: Interaction) -> None:
        """Print what the bot answered; follow modals through."""
        body = await interaction.response(timeout=self.emu.response_deadline + 2)
        kind = body.get("type")
        if kind == 9:
            await self.fill_modal(body["data"])
            return
        if kind == 8:
            self.say(render_choices((body.get("data") or {}).get("choices") or []))
            return
        timeout = QUIET_TIMEOUT if kind == 6 else ANSWER_TIMEOUT
        try:
            message = await interaction.message(timeout=timeout)
        except TimeoutError:
            if kind != 6:
                raise
            self.say("(nothing changed)")
            return
        # An answer is not news (a new DM or post); mark it before anything can await.
        self.state.seen.add(str(message["id"]))
        followups = [f for f in interaction.followups if str(f["id"]) not in self.state.seen]
        self.state.seen.update(str(f["id"]) for f in followups)
        display = await self.display()
        self.say(render_message(message, display, self.save_files(message)))
        for followup in followups:
            self.say(render_message(followup, display, self.save_files(followup)))
        if actions(message):
            self.state.current = message

    async def fill_modal(self, modal: dict[str, JSON]) -> None:
        self.say(f"┌ {modal.get('title', 'Form')}  (empty line keeps the current value)")
        for text in _modal_texts(modal, await self.display()):
            self.say(text)
        values: dict[str, str | list[str]] = {}
        for component, wrapper in modal_fields(modal):
            self.say(render_field(component, wrapper))
            answer = await self.readline("… ")
            if answer is None:
                self.say("(form cancelled)")
                return
            if component.get("type") == 4:
                if answer or not component.get("value"):
                    values[component["custom_id"]] = answer.replace("\\n", "\n")
            elif answer.strip():
                values[component["custom_id"]] = self._option_values(component, answer)
        interaction = await self.emu.submit_modal(self.user_id, modal, values)
        await self.show(interaction)

    @staticmethod
    def _option_values(component: dict[str, JSON], answer: str) -> list[str]:
        options = component.get("options") or []
        picked = []
        for token in answer.replace(",", " ").split():
            if not token.isdigit() or not 1 <= int(token) <= len(options):
                raise ValueError(f"pick numbers between 1 and {len(options)}")
            picked.append(str(options[int(token) - 1]["value"]))
        return picked

    def save_files(self, message: dict[str, JSON]) -> dict[str, str]:
        """Save the message's attachments under ``files_dir``: filename -> where (or why not)."""
        if self.files_dir is None:
            return {}
        saved: dict[str, str] = {}
        for attachment in message.get("attachments") or []:
            name = attachment["filename"]
            path = attachment_path(self.files_dir, message, name)
            try:
                data = self.emu.attachment_bytes(message, name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            except (LookupError, OSError) as error:
                saved[name] = f"not saved: {error}"
            else:
                saved[name] = str(path)
        return saved

    def _from_bot(self, message: dict[str, JSON]) -> bool:
        return str((message.get("author") or {}).get("id")) == str(self.emu.bot_user_id)

    async def show_news(self) -> None:
        """Print the bot's DMs to the current member and the bot's own posts in the server's
        channels, those not shown yet (the members' own messages are never echoed, and
        answers to commands are shown with the command)."""
        async with self._news_lock:
            await self._show_fresh()

    async def _show_fresh(self, heading: datetime | None = None) -> None:
        """What ``show_news`` shows, under ``🕒 <heading>`` when given and anything arrived;
        the caller holds ``_news_lock``."""
        self.show_violations()
        dms = self._fresh(self.emu.dm_messages(self.user_id))
        posts = [(c, m) for c in self._channels() for m in self._fresh(self._posts(c))]
        if not dms and not posts:
            return
        display = await self.display()
        if heading is not None:
            self.say(f"🕒 {describe_moment(heading, display.zone)}")
        for message in dms:
            rendered = render_message(message, display, self.save_files(message))
            self.say("✉ Direct message\n" + rendered)
            if actions(message):
                self.state.current = message
        for channel, message in posts:
            self.say(render_post(message, channel["name"], display, self.save_files(message)))
            if actions(message):
                self.state.current = message
        self.state.dms_shown += len(dms)
        self.state.posts_shown += len(posts)

    def show_violations(self) -> None:
        """Each rule the bot broke since the last look: a developer trying their change should
        not have to read the logs to learn that Discord would have refused it."""
        for violation in self.emu.violations[self.state.violations_shown :]:
            self.say(
                f"⚠ The bot broke Discord's rules ({violation.rule}): "
                f"{violation.method} {violation.path}: {violation.detail}"
            )
            self.state.violations_shown += 1

    def _fresh(self, messages: list[dict[str, JSON]]) -> list[dict[str, JSON]]:
        """The bot's messages not seen yet, now marked seen (and everyone else's with them)."""
        fresh = [m for m in messages if str(m["id"]) not in self.state.seen]
        self.state.seen.update(str(m["id"]) for m in fresh)
        return [m for m in fresh if self._from_bot(m)]

    def _channels(self) -> list[dict[str, JSON]]:
        """The server's channels that hold messages (all but categories)."""
        return [c for c in self.emu.guild_channels(self.guild_id) if c["type"] != GUILD_CATEGORY]

    def _posts(self, channel: dict[str, JSON]) -> list[dict[str, JSON]]:
        """What the bot posted in the channel on its own, not as the answer to a command."""
        messages = self.emu.channel_messages(int(channel["id"]))
        return [m for m in messages if "interaction_metadata" not in m]

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(DM_POLL_SECONDS)
            await self.show_news()

    # --- other members, other channels ---

    def act_as(self, name: str) -> None:
        name = name.strip().lstrip("@").lower()
        if not re.fullmatch(r"[a-z0-9_.]{2,32}", name):
            raise ValueError(
                "say who to be, e.g. :as bob (2-32 letters, digits, _ or .); :as you is you again"
            )
        if name not in self.members:
            self.members[name] = self._new_member(name)
            # Their DMs from an earlier session are history, not news.
            old = self.emu.dm_messages(self.members[name])
            self.state.seen.update(str(m["id"]) for m in old)
        self.user_id = self.members[name]
        if name == "you":
            self.say("✓ You are yourself again.")
        else:
            self.say(
                f"✓ You are now {name}, an ordinary member of the server (no Manage Server). "
                "Commands, buttons, :reply and :dms act as them; `:as you` goes back."
            )

    def _new_member(self, name: str) -> int:
        """An ordinary member whose id comes from the name, so the same name is the same member
        in the next session (whose journal the bot's database keeps)."""
        user_id = self.guild_id + 1000 + zlib.crc32(name.encode())
        with contextlib.suppress(ValueError):  # taken: an earlier console made them already
            self.emu.add_user(name, id=user_id)
        self.emu.add_member(self.guild_id, user_id)
        return user_id

    def move_to(self, where: str) -> None:
        channels = self._channels()
        if not where:
            self.say(render_channels(channels, self.channel_id))
            return
        channel = self._channel(where, channels)
        self.channel_id = int(channel["id"])
        self.say(f"✓ Commands now run in #{channel['name']}.")

    async def list_posts(self, where: str) -> None:
        channel = self._channel(where or str(self.channel_id), self._channels())
        messages = self.emu.channel_messages(int(channel["id"]))
        self.state.seen.update(str(m["id"]) for m in messages)
        self.say(render_channel(channel["name"], messages, await self.display()))

    def _channel(self, where: str, channels: list[dict[str, JSON]]) -> dict[str, JSON]:
        name = where.strip().removeprefix("<#").removesuffix(">").lstrip("#")
        for channel in channels:
            if name in (channel["name"], channel["id"]):
                return channel
        known = ", ".join(f"#{c['name']}" for c in channels)
        raise LookupError(f"there is no channel #{name} to be in; the server has {known}")

    def _prompt(self) -> str:
        """``> `` as yourself where you started; else who and where, e.g. ``bob #news> ``."""
        label = [name for name, i in self.members.items() if i == self.user_id and name != "you"]
        if self.channel_id != self.first_channel_id:
            label += [f"#{c['name']}" for c in self._channels() if int(c["id"]) == self.channel_id]
        return " ".join(label) + "> " if label else "> "


async def run_console(
    emulator: Emulator,
    *,
    guild_id: int,
    channel_id: int,
    user_id: int,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    clock: BotClock | None = None,
    member_zone: Callable[[], Awaitable[str | None]] | None = None,
    files_dir: Path | None = None,
) -> None:
    """Run the REPL until ``quit`` or end of input.

    ``clock`` is the bot's clock, which ``:time`` and ``:down`` move (see ``BotClock``); its
    ``now()`` is also the time relative timestamps count from (without it, the real now);
    ``member_zone()`` is the member's IANA zone as the bot knows it (None: UTC), asked before
    each message is rendered; attachments the bot sends are saved in ``files_dir`` if given.
    """
    console = _Console(
        emulator,
        guild_id,
        channel_id,
        user_id,
        stdin,
        stdout,
        clock=clock,
        member_zone=member_zone,
        files_dir=files_dir,
    )
    await console.run()
