"""What /stats may show moderators: counts only, and none small enough to point at someone."""

from __future__ import annotations

from dataclasses import dataclass, field

# Below this a count could name a person ("the one member who said no"), so it is not shown.
FEWEST_SHOWN = 5


def shown(count: int) -> str:
    """A count as moderators see it: 0, "fewer than 5", or the number."""
    if 0 < count < FEWEST_SHOWN:
        return f"fewer than {FEWEST_SHOWN}"
    return str(count)


@dataclass(frozen=True)
class ServerStats:
    """A server's counts; members are those who used the bot there."""

    members: int
    reflected: dict[str, int] = field(default_factory=dict)  # point slug -> members
    checkins: int = 0  # members taking DM check-ins now
    leanings: dict[int, int] = field(default_factory=dict)  # latest decision's leaning -> members
