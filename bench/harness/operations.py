"""Members' operations as the bot sees them (``advice``, ``open_reflection`` +
``submit_reflection``, ``journal_list``, ``journal_page``, ``progress``), and the loads that
run them.

Each operation checks the answer it got is the real one for the bot that gave it (an error
message answered quickly is not a fast answer); a wrong or missing answer raises
``WrongAnswer``, which the loads count as an error. A latency is taken in the benchmark's
process, from just before the emulator dispatches an interaction to when the bot's final
answer reaches the emulator.
"""

from __future__ import annotations

import asyncio
import copy
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.bots import BARE, CROSSROADS, BotProcess
from harness.emulator import BenchEmulator, Place, Problems, WrongAnswer

if TYPE_CHECKING:
    from sandbox import Interaction

ANSWER_TIMEOUT_S = 30.0  # far beyond any answer; only a lost one waits this long


def _expect(condition: bool, what: str, message: dict[str, Any]) -> None:
    if not condition:
        shown = {k: message.get(k) for k in ("content", "embeds", "flags")}
        raise WrongAnswer(f"{what}: got {str(shown)[:400]}")


def _embed(message: dict[str, Any]) -> dict[str, Any]:
    embeds = message.get("embeds") or [{}]
    first: dict[str, Any] = embeds[0]
    return first


async def _answered(interaction: Interaction, started: float) -> float:
    try:
        return await interaction.answered(timeout=ANSWER_TIMEOUT_S) - started
    except TimeoutError:
        raise WrongAnswer(f"no answer within {ANSWER_TIMEOUT_S:.0f} s") from None


async def advice(
    emulator: BenchEmulator, kind: str, place: Place, subcommand: str = "purpose"
) -> float:
    """``/advice <subcommand>``; the seconds to its answer."""
    started = time.perf_counter()
    interaction = await emulator.slash(
        place.user_id,
        f"advice {subcommand}",
        guild_id=place.guild_id,
        channel_id=place.channel_id,
    )
    latency = await _answered(interaction, started)
    message = emulator.answer_of(interaction)
    if kind == BARE:
        _expect(message.get("content") == "ok", "bare /advice", message)
    elif subcommand == "overview":
        _expect(bool(_embed(message).get("title")), "/advice overview", message)
    else:
        title = str(_embed(message).get("title", ""))
        _expect(title[:1].isdigit(), f"/advice {subcommand} (a point's page)", message)
    _ephemeral(message)
    emulator.discard(interaction)
    return latency


def _ephemeral(message: dict[str, Any]) -> None:
    _expect(bool(int(message.get("flags") or 0) & 64), "a private (ephemeral) answer", message)


@dataclass
class OpenForm:
    place: Place
    modal: dict[str, Any]


async def open_reflection(emulator: BenchEmulator, place: Place, point: str) -> OpenForm:
    """``/reflect point:<point>``: the form it opens (not timed: the member types next)."""
    interaction = await emulator.slash(
        place.user_id,
        "reflect",
        options={"point": point},
        guild_id=place.guild_id,
        channel_id=place.channel_id,
    )
    try:
        modal = await interaction.modal(timeout=ANSWER_TIMEOUT_S)
    except (TimeoutError, AssertionError) as exc:
        raise WrongAnswer(f"/reflect opened no form: {exc}") from None
    emulator.discard(interaction)
    return OpenForm(place, modal)


async def submit_reflection(
    emulator: BenchEmulator, kind: str, form: OpenForm, text: str, comfort: int | None
) -> float:
    """Submit the form with ``text``; the seconds to the answer (saved, privately)."""
    values: dict[str, str | list[str]] = {"text": text}
    if comfort is not None:
        values["comfort"] = [str(comfort)]
    started = time.perf_counter()
    interaction = await emulator.submit_modal(form.place.user_id, form.modal, values)
    latency = await _answered(interaction, started)
    message = emulator.answer_of(interaction)
    if kind == BARE:
        _expect(message.get("content") == "saved", "bare reflection", message)
    else:
        _expect(str(message.get("content", "")).startswith("Saved your"), "saved", message)
    _ephemeral(message)
    emulator.discard(interaction)
    return latency


@dataclass
class JournalPage:
    """The first page of a member's journal, kept to turn its pages later."""

    place: Place
    interaction: Interaction
    message: dict[str, Any]
    pages: int


PAGE_FOOTER = re.compile(r"Page (\d+) of (\d+)")


def _page_of(kind: str, message: dict[str, Any]) -> tuple[int, int]:
    """(page shown, from 1; pages); the bare bot's answer ("page <n>") names no count."""
    if kind == BARE:
        match = re.fullmatch(r"page (\d+)", str(message.get("content")))
        _expect(match is not None, "bare journal", message)
        assert match is not None
        return int(match.group(1)) + 1, 0
    embed = _embed(message)
    match = PAGE_FOOTER.search(str((embed.get("footer") or {}).get("text", "")))
    _expect(
        match is not None and str(embed.get("title", "")).startswith("Your journal"),
        "journal page",
        message,
    )
    assert match is not None
    _expect(len(embed.get("fields") or []) >= 1, "entries on the page", message)
    return int(match.group(1)), int(match.group(2))


async def journal_list(
    emulator: BenchEmulator, kind: str, place: Place
) -> tuple[float, JournalPage]:
    """``/journal list``: the seconds to its first page, and the page (answer kept)."""
    started = time.perf_counter()
    interaction = await emulator.slash(
        place.user_id, "journal list", guild_id=place.guild_id, channel_id=place.channel_id
    )
    latency = await _answered(interaction, started)
    message = emulator.answer_of(interaction)
    _ephemeral(message)
    shown, pages = _page_of(kind, message)
    _expect(shown == 1, "the first page", message)
    return latency, JournalPage(place, interaction, copy.deepcopy(message), pages)


def _next_button(message: dict[str, Any]) -> dict[str, Any] | None:
    for row in message.get("components") or []:
        for component in row.get("components") or []:
            if component.get("type") == 2 and "Next" in str(component.get("label", "")):
                found: dict[str, Any] = component
                return found
    return None


async def journal_page(emulator: BenchEmulator, kind: str, first: JournalPage, page: int) -> float:
    """Turn ``first`` to ``page`` (from 0) with its Next button; the seconds to the edit.

    The button's custom_id is rewritten to the page wanted, as if the member had pressed Next
    until the page before it: the same handler and query, without timing every page on the
    way. Pages are checked in the answer (a wrong one is an error)."""
    message = copy.deepcopy(first.message)
    button = _next_button(message)
    _expect(button is not None, "a Next button", message)
    assert button is not None
    prefix, _, _ = str(button["custom_id"]).rpartition(":")
    button["custom_id"] = f"{prefix}:{page}"
    button["disabled"] = False
    started = time.perf_counter()
    interaction = await emulator.click(first.place.user_id, message, button["custom_id"])
    latency = await _answered(interaction, started)
    answer = emulator.answer_of(interaction)
    shown, _ = _page_of(kind, answer)
    _expect(shown == page + 1, f"page {page + 1}", answer)
    emulator.discard(interaction)
    return latency


def forget_page(emulator: BenchEmulator, first: JournalPage) -> None:
    emulator.discard(first.interaction)


CHART_FILENAME = "progress.png"


async def progress(emulator: BenchEmulator, kind: str, place: Place) -> float:
    """``/progress``: the seconds to the answer with its chart attached."""
    started = time.perf_counter()
    interaction = await emulator.slash(
        place.user_id, "progress", guild_id=place.guild_id, channel_id=place.channel_id
    )
    latency = await _answered(interaction, started)
    message = emulator.answer_of(interaction)
    names = [a.get("filename") for a in message.get("attachments") or []]
    _expect(CHART_FILENAME in names, "a chart", message)
    if kind == CROSSROADS:
        _expect(bool(_embed(message).get("title")), "the progress embed", message)
    emulator.discard(interaction)
    return latency


# --- load -----------------------------------------------------------------------------------


async def record(operation: Awaitable[float], latencies: list[float], problems: Problems) -> None:
    """One operation: its latency, or (if it raised) an error, never both."""
    try:
        latencies.append(await operation)
    except WrongAnswer as exc:
        problems.error("wrong or missing answer", str(exc))
    except (LookupError, ValueError, PermissionError, RuntimeError) as exc:
        problems.error(type(exc).__name__, str(exc))


async def open_loop(
    count: int, rate: float, operation: Callable[[int], Awaitable[float]], *, seed: int
) -> tuple[list[float], Problems]:
    """``count`` operations arriving at ``rate`` a second (Poisson arrivals, whatever the
    answers' pace, so a slow bot meets the same load as a fast one); each one's latency, and
    what went wrong."""
    rng = random.Random(seed)
    problems = Problems()
    latencies: list[float] = []
    tasks = []
    due = time.perf_counter()
    for index in range(count):
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(record(operation(index), latencies, problems)))
        due += rng.expovariate(rate)
    await asyncio.gather(*tasks)
    return latencies, problems


async def closed_loop(
    count: int, concurrency: int, operation: Callable[[int], Awaitable[float]]
) -> tuple[list[float], Problems]:
    """``count`` operations, ``concurrency`` in flight at a time."""
    problems = Problems()
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            await record(operation(index), latencies, problems)

    await asyncio.gather(*(one(i) for i in range(count)))
    return latencies, problems


async def stop_session(bot: BotProcess | None, emulator: BenchEmulator, problems: Problems) -> None:
    """Stop the bot (a bad exit and its log's errors are problems), then the emulator."""
    if bot is not None:
        code = await bot.stop()
        if code not in (0, -15):
            problems.error("bot exit", f"the {bot.kind} bot exited with {code}")
        for line in bot.problems()[:5]:
            problems.error("bot log", line)
    await emulator.stop()
