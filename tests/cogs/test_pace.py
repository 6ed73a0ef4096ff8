"""The pace every timed job keeps under Discord's limit (cogs/core/jobs/pace.py)."""

from cogs.core.jobs.pace import backoff


def test_backoff_doubles_from_a_minute_up_to_an_hour() -> None:
    assert [backoff(n).total_seconds() / 60 for n in range(1, 10)] == [
        1,
        2,
        4,
        8,
        16,
        32,
        60,
        60,
        60,
    ]
