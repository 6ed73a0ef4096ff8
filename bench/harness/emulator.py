"""The Discord emulator in the benchmark's own process (``sandbox.Emulator``, spec validation
on), with its log of requests drained batch by batch, and the world of servers and members
it holds.

``BenchEmulator`` checks request bodies against Discord's spec when a batch ends rather than
as they arrive (the check is the emulator's cost, not the bot's), and hands each batch its
non-2xx answers and violations.
"""

from __future__ import annotations

import json
import multiprocessing
import os
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


class DeferrableValidator(SpecValidator):
    """An emulator's spec check, deferred or timed.

    Checking a body against the spec costs the emulator up to ~25 ms (a journal page's embed;
    jsonschema is slow on component unions), which the bot's answer would be timed with.
    Deferred, each body is kept as it arrives (answered 2xx) and checked by ``check_deferred``,
    off the clock: every body is still checked, and each bad one is still a violation. Inline,
    each check is timed (``seconds``)."""

    def __init__(self, spec: dict[str, JSON], emulator: Emulator, *, defer: bool) -> None:
        super().__init__(spec)
        self._emulator = emulator
        self.defer = defer
        self.unchecked: list[tuple[str, str, str]] = []  # (method, template, body as JSON)
        self.seconds = 0.0  # spent checking bodies inline (not deferred)

    @classmethod
    def install(cls, emulator: Emulator, *, defer: bool) -> DeferrableValidator | None:
        """Replace a started emulator's spec check with one (None: it validates nothing)."""
        loaded = emulator._validator
        if loaded is None:
            return None
        validator = cls(loaded._spec, emulator, defer=defer)  # a fresh one: nothing checked yet
        emulator._validator = validator
        return validator

    def validate(self, method: str, template: str, body: JSON) -> list[Problem]:
        if self.defer:
            self.unchecked.append((method, template, json.dumps(body)))
            return []
        started = time.perf_counter()
        try:
            return super().validate(method, template, body)
        finally:
            self.seconds += time.perf_counter() - started

    def check_deferred(self) -> int:
        """Check the bodies whose check was deferred, each bad one a violation; how many.
        Many are checked on every core (a fork each, the spec already loaded): a ceiling
        run's 10,000 check-in DMs cost about 27 s of jsonschema on one."""
        unchecked, self.unchecked = self.unchecked, []
        if len(unchecked) >= PARALLEL_CHECK_FROM and (os.cpu_count() or 1) > 1:
            global _FORKED
            _FORKED = self
            try:
                with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
                    verdicts = pool.map(_check_forked, unchecked, chunksize=100)
            finally:
                _FORKED = None
        else:
            verdicts = [self._check_one(each) for each in unchecked]
        for (method, template, _), problems in zip(unchecked, verdicts, strict=True):
            if problems:
                detail = "; ".join(f"{where}: {message}" for where, message in problems)
                self._emulator._add_violation(
                    method, template, "schema (checked after the batch)", detail
                )
        return len(unchecked)

    def _check_one(self, deferred: tuple[str, str, str]) -> list[Problem]:
        method, template, body = deferred
        return SpecValidator.validate(self, method, template, json.loads(body))


PARALLEL_CHECK_FROM = 1_000  # fewer bodies: not worth the forks
_FORKED: DeferrableValidator | None = None  # the validator a forked checker inherits


def _check_forked(deferred: tuple[str, str, str]) -> list[Problem]:
    assert _FORKED is not None
    return _FORKED._check_one(deferred)


class BenchEmulator(Emulator):
    """The emulator with its request log drained by the benchmark: each batch's non-2xx
    answers and violations are taken (and forgotten) when the batch ends, so a long run keeps
    no growing log."""

    def __init__(self, *, defer_validation: bool = True, **kwargs: Any) -> None:
        super().__init__(record_requests=True, **kwargs)
        self._violations_seen = 0
        # Deferred (see DeferrableValidator), the spec check runs when the batch ends.
        self.defer_validation = defer_validation
        self._checks: DeferrableValidator | None = None

    async def start(self) -> None:
        await super().start()
        self._checks = DeferrableValidator.install(self, defer=self.defer_validation)

    @property
    def validation_seconds(self) -> float:
        """Spent checking bodies inline (not deferred)."""
        return 0.0 if self._checks is None else self._checks.seconds

    def check_deferred(self) -> None:
        """Check the bodies whose check was deferred; each bad one is a violation."""
        if self._checks is not None:
            self._checks.check_deferred()

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
