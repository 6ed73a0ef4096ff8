"""One real bot and emulator, seeded with members who have data, run in a thread of its own.

Hypothesis drives examples from synchronous code, while the bot lives on an event loop. So the
loop runs in a background thread for the whole test (starting a bot per example would cost
half a second each), and every example is a coroutine handed to it. The bot stays connected
between examples, heartbeats and all, exactly as in production.
"""

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select

from advice.clock import ManualClock
from db import Database
from db.migrate import upgrade
from db.models import Checkin, Reflection
from sandbox import GUILD_CATEGORY, GUILD_VOICE
from tests.conftest import START, database_url, reset_postgres_schema
from tests.e2e.conftest import World, answer, start_world, stop_world
from tests.e2e.test_reflect import open_reflect, submit
from tests.fuzz.hostile import CustomIdPart, ForgedId, IdText, Ref

T = TypeVar("T")
JSON = Any
EXAMPLE_TIMEOUT = 60.0  # one example, all waits included; only a hung harness gets near it


class LagMeter:
    """The longest the event loop went without running anything (a stalled loop makes every
    member's interaction late, not just the one that stalled it)."""

    PERIOD = 0.05

    def __init__(self) -> None:
        self.worst = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.PERIOD)
            self.worst = max(self.worst, loop.time() - start - self.PERIOD)


class LoopThread:
    """An event loop running in a daemon thread; `run` waits for a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop")
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = EXAMPLE_TIMEOUT) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        async def finish() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        self.run(finish())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


SEEDED_ENTRIES = 6  # one per point: more than one page of /journal list


def marker(user: str, index: int) -> str:
    """Private text seeded for a member; seen by anyone else, it is a leak."""
    return f"SECRET-{user}-{index}"


@dataclass
class Arena:
    """The world the fuzz suite attacks: a server where three members already have data.

    ``bob`` (a plain member, whom the server's settings let use /config and /stats, so the
    bot's own checks are what stands in the way) and ``moderator`` take turns acting;
    ``alice`` never acts: she is the other member whose data must stay hers. Everyone has
    reflections (every one holds ``marker`` text, so a forged id that reaches any of them and
    shows it is a leak), a decision (its reason holds one), a time zone and a delivered check-in.
    """

    world: World
    names: dict[int, str]
    channels: dict[str, int]  # general, other, voice, category, elsewhere (another server)
    seeded_entries: dict[int, list[int]] = field(default_factory=dict)
    seeded_checkins: dict[int, list[int]] = field(default_factory=dict)
    # Per actor, a message of the bot's they can see, in the server and in their DMs.
    bases: dict[tuple[int, str], dict[str, JSON]] = field(default_factory=dict)
    # Real custom_ids of the bot's buttons, by route, to mutate into forged ones.
    real_ids: dict[str, list[str]] = field(default_factory=dict)
    thread: LoopThread | None = None
    lag: LagMeter = field(default_factory=LagMeter)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the arena's loop, from the test's (Hypothesis's) thread."""
        assert self.thread is not None
        return self.thread.run(coro)

    @property
    def emulator(self) -> Any:
        return self.world.emulator

    @property
    def actors(self) -> tuple[int, int]:
        return (self.world.bob, self.world.moderator)

    @property
    def members(self) -> list[int]:
        return [self.world.alice, self.world.bob, self.world.moderator]

    def others(self, actor: int) -> list[int]:
        return [m for m in self.members if m != actor]

    def markers_of(self, user: int) -> list[str]:
        return [marker(self.names[user], i) for i in range(SEEDED_ENTRIES + 1)]

    def moderates(self, actor: int) -> set[int]:
        """The servers where `actor` may change the settings (Manage Server)."""
        return {self.world.guild_id} if actor == self.world.moderator else set()

    def where(self, actor: int, place: str) -> dict[str, int | None]:
        """slash()/submit_modal() keyword arguments for `place` (a channel name, or "dm")."""
        if place == "dm":
            return {"guild_id": None, "channel_id": self.emulator.dm_channel_id(actor)}
        return {"guild_id": None, "channel_id": self.channels[place]}

    async def entry_ids(self, user: int) -> list[int]:
        async with self.world.database.read() as session:
            rows = await session.scalars(
                select(Reflection.id).where(Reflection.user_id == user).order_by(Reflection.id)
            )
            return list(rows)

    async def checkin_ids(self, user: int) -> list[int]:
        async with self.world.database.read() as session:
            rows = await session.scalars(
                select(Checkin.id).where(Checkin.user_id == user).order_by(Checkin.id)
            )
            return list(rows)

    async def resolve(self, actor: int, parts: list[CustomIdPart]) -> list[str]:
        """Custom_id arguments as text, each Ref replaced by a real id of its kind."""
        return [str(await self.resolve_value(actor, part)) for part in parts]

    async def resolve_value(self, actor: int, value: object) -> object:
        """`value`, or the real id a Ref or IdText in it stands for (as `actor` sees it)."""
        if isinstance(value, Ref):
            return await self._resolve_ref(actor, value)
        if isinstance(value, IdText):
            return value.render(await self._resolve_ref(actor, value.ref))
        return value

    async def forge(self, actor: int, forged: ForgedId) -> str:
        """The custom_id `forged` describes, with real ids as seen by `actor`."""
        parts: list[CustomIdPart] = list(forged.base.split(":"))
        for index, part in forged.replace:
            parts[index % len(parts)] = part
        if forged.keep is not None:
            parts = parts[: forged.keep]
        text = ":".join(await self.resolve(actor, [*parts, *forged.extra]))
        return text if forged.cut is None else text[: forged.cut]

    async def _resolve_ref(self, actor: int, ref: Ref) -> int:
        owner = actor if ref.mine else self.others(actor)[ref.index % 2]
        if ref.kind == "member":
            return owner
        ids = await (self.entry_ids if ref.kind == "entry" else self.checkin_ids)(owner)
        return ids[-1 - ref.index % len(ids)] if ids else 0


def walk_components(components: list[dict[str, JSON]]) -> Iterator[dict[str, JSON]]:
    """Every component of a message or modal, however nested (rows, labels, sections)."""
    for component in components:
        yield component
        nested = [component.get("component"), component.get("accessory")]
        yield from walk_components(component.get("components") or [])
        yield from walk_components([c for c in nested if isinstance(c, dict)])


def custom_ids(components: list[dict[str, JSON]]) -> Iterator[str]:
    for component in walk_components(components):
        if isinstance(component.get("custom_id"), str):
            yield component["custom_id"]


async def _seed_member(world: World, user: int, name: str) -> None:
    await answer(world, user, "timezone", zone="Europe/Berlin")
    points = ("purpose", "money", "fame", "decades", "autonomy", "obscurity")
    for index, point in enumerate(points):  # six: more than one page of /journal list
        text = f"{marker(name, index)} what I think"
        await submit(world, user, await open_reflect(world, user, point), text, ["3"])
        world.clock.advance(timedelta(minutes=5))
    why = f"{marker(name, SEEDED_ENTRIES)} because"
    await answer(world, user, "decide", leaning="undecided", why=why)
    await answer(world, user, "checkin start", hour=18)


async def _bot_messages(arena: Arena, actor: int) -> list[dict[str, JSON]]:
    """Messages of the bot's with buttons that the actor has seen, one of each kind."""
    world = arena.world
    [entry, *_] = arena.seeded_entries[actor]
    commands: list[tuple[str, dict[str, object]]] = [
        ("mydata forget", {}),
        ("journal list", {}),
        ("journal delete", {"entry": str(entry)}),
        ("share", {"entry": str(entry)}),
        ("advice purpose", {}),
    ]
    messages = []
    for command, options in commands:
        messages.append(await answer(world, actor, command, **options))
    messages += [m for m in arena.emulator.dm_messages(actor) if m.get("components")]
    return messages


async def open_arena(backend: str, tmp_path: Path) -> Arena:
    url = database_url(backend, tmp_path)
    if backend == "postgresql":
        await reset_postgres_schema(url)
    database = Database(url)
    await upgrade(database)
    world, runner = await start_world(database, ManualClock(START))
    world.extra["runner"] = runner
    emulator, guild = world.emulator, world.guild_id
    channels = {
        "general": world.channel_id,
        "other": emulator.add_text_channel(guild, "other"),
        "voice": emulator.add_channel(guild, "voice", type=GUILD_VOICE),
        "category": emulator.add_channel(guild, "category", type=GUILD_CATEGORY),
    }
    elsewhere = emulator.add_guild("Elsewhere")
    channels["elsewhere"] = emulator.add_text_channel(elsewhere, "far")
    for command in ("config", "stats"):
        emulator.allow_command(guild, command, world.bob)
    names = {world.alice: "alice", world.bob: "bob", world.moderator: "moderator"}
    arena = Arena(world, names, channels)
    await answer(world, world.moderator, "config channel", channel=world.channel_id)
    for user, name in names.items():
        await _seed_member(world, user, name)
    async with database.read() as session:
        due = await session.scalar(select(func.max(Checkin.due_at)))
    world.clock.set(due)  # everyone's first check-in is due
    cog: Any = world.bot.get_cog("Checkins")
    await cog.loop.tick()
    for user in names:
        arena.seeded_entries[user] = await arena.entry_ids(user)
        arena.seeded_checkins[user] = await arena.checkin_ids(user)
        assert any(m.get("components") for m in emulator.dm_messages(user)), "no check-in DM"
    for actor in arena.actors:
        messages = await _bot_messages(arena, actor)
        arena.bases[actor, "general"] = messages[0]
        arena.bases[actor, "dm"] = messages[-1]
        for message in messages:
            for custom_id in custom_ids(message.get("components") or []):
                arena.real_ids.setdefault(custom_id.split(":")[1], []).append(custom_id)
    assert emulator.violations == [], emulator.violations
    world.extra["lag"] = asyncio.create_task(arena.lag.run())
    return arena


async def close_arena(arena: Arena) -> None:
    world = arena.world
    world.extra["lag"].cancel()
    await stop_world(world, world.extra["runner"])
    await world.database.dispose()
