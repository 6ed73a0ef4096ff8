"""The latest chart per member: served again while its inputs are unchanged, drawn anew once
they change (whichever process wrote), and never more than its byte budget."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cogs.core.charts.cache import ChartCache, chart_key
from cogs.core.charts.pool import ChartRenderer
from cogs.core.charts.samples import ComfortSample, LeaningSample
from cogs.core.charts.worker import encode_request

AT = datetime(2026, 3, 1, tzinfo=UTC)
LABELS = {"purpose": "Why you want it", "money": "Money"}
ALICE, BOB = 1, 2


def key(text: str) -> bytes:
    return chart_key(text.encode())


def test_a_hit_needs_the_same_member_and_the_same_inputs() -> None:
    cache = ChartCache(max_bytes=1000)
    cache.put(ALICE, key("a"), b"alice's chart")
    assert cache.get(ALICE, key("a")) == b"alice's chart"
    assert cache.get(ALICE, key("b")) is None  # she wrote since: her inputs changed
    assert cache.get(BOB, key("a")) is None


def test_one_chart_per_member() -> None:
    cache = ChartCache(max_bytes=1000)
    cache.put(ALICE, key("a"), b"x" * 100)
    cache.put(ALICE, key("b"), b"y" * 30)
    assert len(cache) == 1 and cache.bytes == 30
    assert cache.get(ALICE, key("a")) is None
    assert cache.get(ALICE, key("b")) == b"y" * 30


def test_the_least_recently_used_go_first_and_the_budget_holds() -> None:
    cache = ChartCache(max_bytes=250)
    for member in range(3):
        cache.put(member, key("k"), bytes(100))  # the third pushes the first out
    assert cache.get(0, key("k")) is None
    assert cache.get(1, key("k")) is not None  # used: now the most recent
    cache.put(3, key("k"), bytes(100))
    assert cache.get(2, key("k")) is None and cache.get(1, key("k")) is not None
    assert cache.bytes == 200 <= cache.max_bytes and len(cache) == 2
    cache.put(4, key("k"), bytes(251))  # bigger than the whole budget: not kept
    assert cache.get(4, key("k")) is None and cache.bytes == 200


def test_equal_inputs_give_equal_keys_however_they_were_built() -> None:
    # Two reads of the same rows may share one string object between samples, or not.
    slug = "".join("purpose")
    shared = [ComfortSample(slug, AT, 3), ComfortSample(slug, AT + timedelta(days=1), 4)]
    apart = [
        ComfortSample("".join("purpose"), AT, 3),
        ComfortSample("".join("purpose"), AT + timedelta(days=1), 4),
    ]
    leanings = [LeaningSample(AT, 1)]
    one = encode_request(shared, leanings, LABELS, "UTC")
    assert chart_key(one) == chart_key(encode_request(apart, leanings, dict(LABELS), "UTC"))
    changed = encode_request(shared, [LeaningSample(AT, 2)], LABELS, "UTC")
    assert chart_key(changed) != chart_key(one)


@pytest.fixture
async def charts() -> AsyncIterator[ChartRenderer]:
    renderer = ChartRenderer(size=1)
    yield renderer
    await renderer.close()


async def test_a_repeated_chart_is_not_drawn_again(charts: ChartRenderer) -> None:
    comfort = [ComfortSample("purpose", AT, 4)]
    first = await charts.render(comfort, [], labels=LABELS, tz=UTC, member=ALICE)
    again = await charts.render(list(comfort), [], labels=dict(LABELS), tz=UTC, member=ALICE)
    assert again == first and charts.drawn == 1
    # Anything the picture depends on draws it anew: a new rating, a new zone.
    rated = await charts.render(
        [*comfort, ComfortSample("money", AT + timedelta(days=1), 2)],
        [],
        labels=LABELS,
        tz=UTC,
        member=ALICE,
    )
    assert rated != first and charts.drawn == 2
    await charts.render(comfort, [], labels=LABELS, tz=ZoneInfo("Pacific/Chatham"), member=ALICE)
    assert charts.drawn == 3
    # Without a member (the year-end summary) nothing is kept.
    await charts.render(comfort, [], labels=LABELS, tz=UTC)
    await charts.render(comfort, [], labels=LABELS, tz=UTC)
    assert charts.drawn == 5


async def test_the_same_chart_asked_for_at_once_is_drawn_once(charts: ChartRenderer) -> None:
    comfort = [ComfortSample("purpose", AT, 2)]
    pngs = await asyncio.gather(
        *(charts.render(comfort, [], labels=LABELS, tz=UTC, member=ALICE) for _ in range(3))
    )
    assert len(set(pngs)) == 1 and charts.drawn == 1


async def test_one_asker_giving_up_leaves_the_chart_to_the_others(charts: ChartRenderer) -> None:
    comfort = [ComfortSample("purpose", AT, 5)]
    impatient = asyncio.create_task(charts.render(comfort, [], labels=LABELS, tz=UTC, member=BOB))
    patient = asyncio.create_task(charts.render(comfort, [], labels=LABELS, tz=UTC, member=BOB))
    await asyncio.sleep(0)  # both are waiting for the one drawing
    impatient.cancel()
    png = await patient
    assert impatient.cancelled() and png.startswith(b"\x89PNG")
    assert charts.drawn == 1
