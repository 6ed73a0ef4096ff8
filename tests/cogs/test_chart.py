"""The /progress chart renders a real PNG for every shape of history, from any thread."""

import random
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cogs.core.charts.drawing import ComfortSample, LeaningSample, render_progress_chart

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SLUGS = ("purpose", "money", "impact", "skills", "risk", "people")
LABELS = {slug: slug.capitalize() for slug in SLUGS}
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the PNG is framed correctly."""
    assert isinstance(data, bytes)
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    assert data[-8:-4] == b"IEND", "truncated PNG"
    return width, height


def assert_chart(data: bytes) -> None:
    width, height = png_size(data)
    assert 800 <= width <= 1400
    assert 500 <= height <= 1000
    assert len(data) < 250_000  # Discord previews stay quick


def year_of_history(
    seed: int = 7, reflections: int = 1000, decisions: int = 50
) -> tuple[list[ComfortSample], list[LeaningSample]]:
    rng = random.Random(seed)
    minutes = 365 * 24 * 60
    comfort = [
        ComfortSample(
            rng.choice(SLUGS), START + timedelta(minutes=rng.randrange(minutes)), rng.randint(1, 5)
        )
        for _ in range(reflections)
    ]
    leanings = [
        LeaningSample(START + timedelta(minutes=rng.randrange(minutes)), rng.randint(-2, 2))
        for _ in range(decisions)
    ]
    return comfort, leanings


def test_one_sample_each() -> None:
    data = render_progress_chart(
        [ComfortSample("purpose", START, 3)], [LeaningSample(START, 1)], labels=LABELS
    )
    assert_chart(data)


def test_a_year_of_reflections_across_all_points() -> None:
    comfort, leanings = year_of_history()
    assert_chart(render_progress_chart(comfort, leanings, labels=LABELS))


def test_only_comfort() -> None:
    comfort, _ = year_of_history(reflections=20)
    assert_chart(render_progress_chart(comfort, [], labels=LABELS))


def test_only_leanings() -> None:
    _, leanings = year_of_history(decisions=5)
    assert_chart(render_progress_chart([], leanings, labels=LABELS))


def test_nothing_at_all_is_still_a_picture() -> None:
    assert_chart(render_progress_chart([], [], labels=LABELS))
    assert_chart(render_progress_chart([], [], labels={}))


def test_the_picture_depends_on_the_data() -> None:
    empty = render_progress_chart([], [], labels=LABELS)
    one = render_progress_chart([ComfortSample("purpose", START, 3)], [], labels=LABELS)
    other = render_progress_chart([ComfortSample("purpose", START, 5)], [], labels=LABELS)
    assert len({empty, one, other}) == 3


def test_unsorted_input_draws_like_sorted() -> None:
    comfort, leanings = year_of_history(reflections=60, decisions=10)
    shuffled_comfort, shuffled_leanings = comfort[:], leanings[:]
    random.Random(1).shuffle(shuffled_comfort)
    random.Random(2).shuffle(shuffled_leanings)
    by_time = render_progress_chart(
        sorted(comfort, key=lambda s: s.at), sorted(leanings, key=lambda s: s.at), labels=LABELS
    )
    shuffled = render_progress_chart(shuffled_comfort, shuffled_leanings, labels=LABELS)
    assert_chart(shuffled)
    assert shuffled == by_time


def test_same_day_samples() -> None:
    comfort = [ComfortSample(slug, START + timedelta(hours=i), 1 + i % 5) for i, slug in
               enumerate(SLUGS)]  # fmt: skip
    leanings = [LeaningSample(START + timedelta(hours=2), -1), LeaningSample(START, 0)]
    assert_chart(render_progress_chart(comfort, leanings, labels=LABELS))


def test_same_instant_everywhere() -> None:
    comfort = [ComfortSample(slug, START, 4) for slug in SLUGS]
    assert_chart(render_progress_chart(comfort, [LeaningSample(START, 2)], labels=LABELS))


def test_unknown_slug_and_awkward_labels() -> None:
    comfort = [
        ComfortSample("purpose", START, 2),
        ComfortSample("retired-point", START + timedelta(days=3), 4),
        ComfortSample("money", START + timedelta(days=5), 5),
    ]
    labels = {"purpose": "Purpose", "money": "$200k now vs $0 later, and a very long label\n"}
    assert_chart(render_progress_chart(comfort, [], labels=labels))
    assert_chart(render_progress_chart(comfort, [], labels={}))


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Asia/Kolkata", "Pacific/Chatham"])
def test_member_time_zone(zone: str) -> None:
    comfort, leanings = year_of_history(reflections=40, decisions=8)
    assert_chart(render_progress_chart(comfort, leanings, labels=LABELS, tz=ZoneInfo(zone)))


def test_renders_concurrently_from_threads() -> None:
    histories = [year_of_history(seed=seed, reflections=250, decisions=20) for seed in range(4)]
    serial = [render_progress_chart(c, lean, labels=LABELS) for c, lean in histories]
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [
            pool.submit(render_progress_chart, c, lean, labels=LABELS, tz=ZoneInfo("Europe/Paris"))
            for c, lean in histories
            for _ in range(2)
        ]
        concurrent = [future.result(timeout=60) for future in futures]
    for data in concurrent:
        assert_chart(data)
    # No cross-talk between threads: each history draws the same from any thread.
    with ThreadPoolExecutor(max_workers=4) as pool:
        again = list(
            pool.map(lambda h: render_progress_chart(h[0], h[1], labels=LABELS), histories)
        )
    assert again == serial


def test_module_never_imports_pyplot() -> None:
    # pyplot carries global state that is not thread-safe; a fresh interpreter proves the
    # chart module does not pull it in (other tests in this process might).
    code = (
        "import sys, cogs.core.charts.drawing; "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
