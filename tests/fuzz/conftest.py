"""The fuzz suite: Hypothesis sends hostile interactions to the real bot through the emulator.

Every command, option, autocomplete, button route and form the running bot registers is found
at run time (the emulator's synced commands, the bot's router), so a new one is fuzzed without
anyone listing it. What must hold for every example is in ``invariants.py``.

Profiles (``HYPOTHESIS_PROFILE``):

- ``ci`` (the default, with or without ``CI`` set): derandomised, a fixed budget of examples per
  command, route and form, no example database. The whole suite takes about a minute.
- ``dev``: random and twenty times longer, remembering failures in ``.hypothesis/``;
  ``HYPOTHESIS_PROFILE=dev .venv/bin/python -m pytest tests/fuzz`` before a release or after
  touching input handling.

A failure lists each case that broke an invariant, with Hypothesis's minimal example and what
the bot did wrong; ``--hypothesis-seed`` replays a dev run.
"""

import logging
import os
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import database_backends
from tests.fuzz.arena import Arena, LoopThread, close_arena, open_arena
from tests.fuzz.invariants import ErrorLog

T = TypeVar("T")

# One world serves every example of a case; examples are slow (real HTTP and websocket round
# trips), and their work is in the bot, not in generating data.
_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}
settings.register_profile("ci", max_examples=12, derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", max_examples=250, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def errors() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture(params=database_backends())
def arena(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Arena]:
    """The seeded bot and emulator, on a loop in a thread of their own (see arena.py), on
    SQLite and on PostgreSQL (when TEST_DATABASE_URL is set): their integers differ."""
    thread = LoopThread()
    try:
        seeded = thread.run(open_arena(request.param, tmp_path))
        seeded.thread = thread
        yield seeded
        thread.run(close_arena(seeded))
    finally:
        thread.close()


def _describe(error: BaseException) -> Iterator[str]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _describe(inner)
        return
    yield "".join(traceback.format_exception_only(error)).strip()  # with Hypothesis's notes


def fuzz_each(cases: Mapping[str, st.SearchStrategy[T]], check: Callable[[T], str]) -> None:
    """Run Hypothesis on every case with the profile's budget each; report every case that
    failed, with its minimal example (so one broken command does not hide the others).

    `check` returns the gist of the bot's answer; with ``-s`` each case prints how its examples
    were answered (refused, saved, not found...), to see how deep the fuzzing reaches.
    """
    failures = []
    for name, strategy in cases.items():
        gists: Counter[str] = Counter()
        try:
            _run(strategy, check, gists)
        except Exception as error:
            failures.append(f"== {name}\n" + "\n".join(_describe(error)))
        common = ", ".join(f"{count}× {gist!r}" for gist, count in gists.most_common(6))
        print(f"{name}: {common}")
    assert not failures, "\n\n".join(failures)


def _run(strategy: st.SearchStrategy[T], check: Callable[[T], str], gists: Counter[str]) -> None:
    @given(strategy)
    def example(value: T) -> None:
        gists[check(value)] += 1

    example()
