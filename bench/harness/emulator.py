"""The Discord emulator in the benchmark's own process (``sandbox.Emulator``, spec validation
on), with its log of requests drained batch by batch, and the world of servers and members
it holds.

``BenchEmulator`` checks request bodies against Discord's spec when a batch ends rather than
as they arrive (the check is the emulator's cost, not the bot's), and hands each batch its
non-2xx answers and violations.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox import JSON, Problem, SpecValidator
from sandbox.emulator import Emulator, Violation

if TYPE_CHECKING:
    from sandbox import Interaction

FIRST_USER_ID = 700_000_000_000_000_000  # Discord-snowflake sized, fixed: the database knows them
FIRST_GUILD_ID = 600_000_000_000_000_000


class WrongAnswer(Exception):
    """The bot's answer was not the one expected (or never came)."""


@dataclass
class Problems:
    """What went wrong among a batch's interactions; a batch with any is not a result."""

    errors: Counter[str] = field(default_factory=Counter)  # wrong or missing answers, by kind
    statuses: Counter[int] = field(default_factory=Counter)  # non-2xx answers to the bot
    violations: list[Violation] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=dict)  # a few of each kind

    def example(self, what: str, detail: str) -> None:
        kept = self.examples.setdefault(what, [])
        if len(kept) < 3:
            kept.append(detail)

    def error(self, what: str, detail: str) -> None:
        self.errors[what] += 1
        self.example(what, detail)

    def absorb(self, other: Problems) -> None:
        self.errors.update(other.errors)
        self.statuses.update(other.statuses)
        self.violations.extend(other.violations)
        for what, details in other.examples.items():
            for detail in details:
                self.example(what, detail)

    @property
    def count(self) -> int:
        return sum(self.errors.values()) + sum(self.statuses.values()) + len(self.violations)

    def summary(self) -> str:
        if not self.count:
            return "0 errors, 0 non-2xx answers, 0 emulator violations"
        parts = [
            f"{sum(self.errors.values())} errors ({dict(self.errors)})",
            f"{sum(self.statuses.values())} non-2xx answers ({dict(self.statuses)})",
            f"{len(self.violations)} emulator violations",
        ]
        lines = [", ".join(parts)]
        lines += [
            f"    {v.rule}: {v.method} {v.path}: {v.detail[:200]}" for v in self.violations[:5]
        ]
        for what, details in self.examples.items():
            lines += [f"    {what}: {detail[:300]}" for detail in details]
        return "\n".join(lines)


class _TimedValidator(SpecValidator):
    """The emulator's spec check, deferred to the batch's end or (inline) timed."""

    def __init__(self, spec: dict[str, JSON], emulator: BenchEmulator) -> None:
        super().__init__(spec)
        self._emulator = emulator

    def validate(self, method: str, template: str, body: JSON) -> list[Problem]:
        emulator = self._emulator
        if emulator.defer_validation:
            emulator.unchecked.append((method, template, json.dumps(body)))
            return []
        started = time.perf_counter()
        try:
            return super().validate(method, template, body)
        finally:
            emulator.validation_seconds += time.perf_counter() - started

    def check_now(self, method: str, template: str, body: JSON) -> list[Problem]:
        return super().validate(method, template, body)


class BenchEmulator(Emulator):
    """The emulator with its request log drained by the benchmark: each batch's non-2xx
    answers and violations are taken (and forgotten) when the batch ends, so a long run keeps
    no growing log."""

    def __init__(self, *, defer_validation: bool = True, **kwargs: Any) -> None:
        super().__init__(record_requests=True, **kwargs)
        self._violations_seen = 0
        # Checking a body against the spec costs the emulator up to ~25 ms (a journal page's
        # embed; jsonschema is slow on component unions), which the bot's answer would be
        # timed with. Deferred, the check runs when the batch ends, off the clock: every body
        # is still checked, and a batch with a bad one is still invalid, but answered 2xx.
        self.defer_validation = defer_validation
        self.unchecked: list[tuple[str, str, str]] = []  # (method, template, body as JSON)
        self.validation_seconds = 0.0  # spent checking bodies inline (not deferred)
        self._timed: _TimedValidator | None = None

    async def start(self) -> None:
        await super().start()
        loaded = self._validator
        if loaded is not None:  # a fresh one, as every emulator's: nothing checked yet
            self._timed = self._validator = _TimedValidator(loaded._spec, self)

    def check_deferred(self) -> None:
        """Check the bodies whose check was deferred; each bad one is a violation."""
        unchecked, self.unchecked = self.unchecked, []
        if self._timed is None:
            return
        for method, template, body in unchecked:
            problems = self._timed.check_now(method, template, json.loads(body))
            if problems:
                detail = "; ".join(f"{where}: {message}" for where, message in problems)
                self._add_violation(method, template, "schema (checked after the batch)", detail)

    @property
    def root(self) -> str:
        return self.api_base.removesuffix("/api/v10")

    def answer_of(self, interaction: Interaction) -> dict[str, Any]:
        """The answer as it is now, without the copy ``Interaction.message()`` makes (the
        load generator reads thousands)."""
        if interaction.answer_id is None:
            kinds = [c.get("type") for c in interaction.callbacks]
            raise WrongAnswer(f"the answer was no message (callbacks {kinds})")
        message: dict[str, Any] = self._world.messages[interaction.answer_id]
        return message

    def take_problems(self) -> Problems:
        """Non-2xx answers and violations since the last call (deferred checks run now)."""
        self.check_deferred()
        problems = Problems()
        pending = []
        for record in self.requests:
            if record.status == 0:  # still being answered: the next batch's
                pending.append(record)
            elif not 200 <= record.status < 300:
                problems.statuses[record.status] += 1
                problems.example(f"HTTP {record.status}", f"{record.method} {record.path}")
        self.requests[:] = pending
        problems.violations = self.violations[self._violations_seen :]
        self._violations_seen = len(self.violations)
        return problems


@dataclass(frozen=True)
class Place:
    """Where a member uses the bot."""

    user_id: int
    guild_id: int
    channel_id: int


def build_world(
    emulator: Emulator,
    *,
    guilds: int,
    members: int,
    channels_per_guild: int = 1,
    roles_per_guild: int = 3,
) -> list[Place]:
    """``guilds`` servers with ``channels_per_guild`` text channels and (with the emulator's
    own three) ``roles_per_guild`` roles each, and ``members`` ordinary members spread evenly
    among them (user ids from FIRST_USER_ID up, so a database seeded beforehand knows them).
    Returns where each member uses the bot: their server's first channel."""
    guild_ids = [emulator.add_guild(f"Server {n}", id=FIRST_GUILD_ID + n) for n in range(guilds)]
    channels: dict[int, int] = {}
    for guild_id in guild_ids:
        made = [
            emulator.add_text_channel(guild_id, f"channel-{n}") for n in range(channels_per_guild)
        ]
        channels[guild_id] = made[0]
        for n in range(max(0, roles_per_guild - 3)):
            emulator.add_role(guild_id, f"role-{n}")
    users = [emulator.add_user(f"member{n}", id=FIRST_USER_ID + n) for n in range(members)]
    for index, guild_id in enumerate(guild_ids):
        emulator.add_members(guild_id, users[index::guilds])
    return [
        Place(user_id, guild_ids[n % guilds], channels[guild_ids[n % guilds]])
        for n, user_id in enumerate(users)
    ]
