"""The one source of "now": injected everywhere so tests and the sandbox can move time."""

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to: for tests and the sandbox."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware instant")
        self._now = instant


class OffsetClock:
    """Real time plus an offset that only grows: the sandbox's clock, which a newcomer can move
    forward to watch a year of check-ins arrive in minutes."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        if offset < timedelta(0):
            raise ValueError("OffsetClock only moves forward")
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> datetime:
        if delta <= timedelta(0):
            raise ValueError("time only moves forward")
        self.offset += delta
        return self.now()
