"""The latest chart per member: served again while its inputs are unchanged, drawn anew once
they change (whichever process wrote), and never more than its byte budget."""

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from cogs.core.charts.cache import ChartCache, chart_key
from cogs.core.charts.pool import ChartRenderer
from cogs.core.charts.samples import Journey, LeaningSample, Mark
from cogs.core.charts.worker import encode_request

AT = datetime(2026, 3, 1, tzinfo=UTC)
POINTS = [("purpose", "Know why you want it"), ("money", "Less money, longer horizon")]
ALICE, BOB = 1, 2


def journey(
    marks: list[Mark], leanings: list[LeaningSample] | None = None, zone: str = "UTC"
) -> Journey:
    return Journey(POINTS, marks, leanings or [], AT, AT + timedelta(days=30), zone)


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
    shared = [Mark(slug, AT, 3), Mark(slug, AT + timedelta(days=1), None)]
    apart = [
        Mark("".join("purpose"), AT, 3),
        Mark("".join("purpose"), AT + timedelta(days=1), None),
    ]
    leanings = [LeaningSample(AT, 1)]
    one = encode_request(journey(shared, leanings))
    assert chart_key(one) == chart_key(encode_request(journey(apart, list(leanings))))
    changed = encode_request(journey(shared, [LeaningSample(AT, 2)]))
    assert chart_key(changed) != chart_key(one)
    rated = encode_request(journey([shared[0], shared[1]._replace(comfort=4)], leanings))
    assert chart_key(rated) != chart_key(one)


@pytest.fixture
async def charts() -> AsyncIterator[ChartRenderer]:
    renderer = ChartRenderer(size=1)
    yield renderer
    await renderer.close()


async def test_a_repeated_chart_is_not_drawn_again(charts: ChartRenderer) -> None:
    marks = [Mark("purpose", AT, 4)]
    first = await charts.render(journey(marks), member=ALICE)
    again = await charts.render(journey(list(marks)), member=ALICE)
    assert again == first and charts.drawn == 1
    # Anything the picture depends on draws it anew: a new reflection (rated or not), a new
    # zone, a new day.
    unrated = [*marks, Mark("money", AT + timedelta(days=1), None)]
    assert await charts.render(journey(unrated), member=ALICE) != first
    assert charts.drawn == 2
    await charts.render(journey(marks, zone="Pacific/Chatham"), member=ALICE)
    assert charts.drawn == 3
    tomorrow = journey(marks)._replace(until=AT + timedelta(days=31))
    await charts.render(tomorrow, member=ALICE)
    assert charts.drawn == 4
    # Without a member (the year-end summary) nothing is kept.
    await charts.render(journey(marks))
    await charts.render(journey(marks))
    assert charts.drawn == 6


async def test_the_same_chart_asked_for_at_once_is_drawn_once(charts: ChartRenderer) -> None:
    chart = journey([Mark("purpose", AT, 2)])
    pngs = await asyncio.gather(*(charts.render(chart, member=ALICE) for _ in range(3)))
    assert len(set(pngs)) == 1 and charts.drawn == 1


async def test_one_asker_giving_up_leaves_the_chart_to_the_others(charts: ChartRenderer) -> None:
    chart = journey([Mark("purpose", AT, 5)])
    impatient = asyncio.create_task(charts.render(chart, member=BOB))
    patient = asyncio.create_task(charts.render(chart, member=BOB))
    await asyncio.sleep(0)  # both are waiting for the one drawing
    impatient.cancel()
    png = await patient
    assert impatient.cancelled() and png.startswith(b"\x89PNG")
    assert charts.drawn == 1


def test_the_charts_are_kept_in_files_not_in_memory_and_go_with_the_cache() -> None:
    """A bot serving many members would otherwise grow by the whole budget as it fills."""
    import shutil

    cache = ChartCache(max_bytes=1000)
    cache.put(ALICE, key("a"), b"alice's chart")
    [held] = [value for value in vars(cache).values() if isinstance(value, OrderedDict)]
    assert all("alice's chart" not in repr(entry) for entry in held.values())
    directory = cache._directory
    assert directory is not None and (directory / f"{ALICE}.png").read_bytes() == b"alice's chart"
    shutil.rmtree(directory)  # cleaned up under us: drawn again, no error
    assert cache.get(ALICE, key("a")) is None and len(cache) == 0 and cache.bytes == 0
    cache.put(BOB, key("b"), b"bob's")
    directory = cache._directory
    cache.clear()
    assert directory is not None and not directory.exists() and cache.get(BOB, key("b")) is None
