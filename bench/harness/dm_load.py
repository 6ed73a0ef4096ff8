"""Members writing to a bot in their DMs, through the emulator in a process of its own
(bench/harness/emulator_server.py): each DM posted from the benchmark's process at a steady
rate, the bot's answers read back from the emulator's log of members' DMs and paired with the
DM they answer, and each answer timed by the emulator's own clock, from the moment it stores
the member's message (just before MESSAGE_CREATE goes to the bot) to the moment it stores the
bot's answer. Nothing is timed in the bot, nor across processes.

An answer belongs to the member's latest message in that DM stored before it (the log is in
the emulator's order), so a second answer to one message is counted as such, never passed off
as the answer to the next.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.emulator import Problems
from harness.emulator_process import EmulatorProcess

POLL_S = 0.1  # how often the emulator's counters are read while answers are awaited


@dataclass(frozen=True)
class Answer:
    """A message the bot posted in a member's DM, as the emulator stored it."""

    id: int
    at: float  # the emulator's time.perf_counter when it stored the message
    nonce: str | None
    content: str
    titles: tuple[str | None, ...]  # its embeds'
    buttons: int
    selects: int
    size: int  # bytes of its content, embeds and components as JSON

    @classmethod
    def of(cls, entry: dict[str, Any]) -> Answer:
        answer = entry["answer"]
        nonce = answer.get("nonce")
        return cls(
            id=int(entry["id"]),
            at=float(entry["at"]),
            nonce=None if nonce is None else str(nonce),
            content=str(answer.get("content") or ""),
            titles=tuple(answer.get("titles") or ()),
            buttons=int(answer.get("buttons", 0)),
            selects=int(answer.get("selects", 0)),
            size=int(answer.get("bytes", 0)),
        )


@dataclass
class Exchange:
    """A member's DM and the bot's answers to it."""

    user_id: int
    message_id: int
    text: str = ""
    tag: str = ""  # the benchmark's (warm-up, a round)
    stored_at: float | None = None  # the emulator's time.perf_counter when it stored the DM
    answers: list[Answer] = field(default_factory=list)

    @property
    def latency(self) -> float | None:
        """Seconds from the DM stored (and sent to the bot) to its first answer stored."""
        if self.stored_at is None or not self.answers:
            return None
        return self.answers[0].at - self.stored_at


# Judges an answer for the benchmark: None if it is the one the DM calls for, else what is
# wrong with it (counted under that name, so keep it short and stable).
Judge = Callable[[Exchange, Answer], str | None]


class DmTraffic:
    """The DMs the benchmark sent through one emulator, and the bot's answers, paired."""

    def __init__(self, emulator: EmulatorProcess, channels: dict[int, int]) -> None:
        self.emulator = emulator
        self.users = {channel: user for user, channel in channels.items()}
        self.exchanges: dict[int, Exchange] = {}  # by the DM's message id
        self.strays: list[Answer] = []  # in a DM where the member had written nothing yet
        self._latest: dict[int, Exchange] = {}  # channel -> the member's latest DM
        self._read = 0  # entries of the emulator's log read so far

    @classmethod
    async def open(cls, emulator: EmulatorProcess) -> DmTraffic:
        channels = await emulator.get("/channels")
        return cls(emulator, {int(user): int(channel) for user, channel in channels.items()})

    @property
    def sent(self) -> int:
        return len(self.exchanges)

    def _exchange(self, message_id: int, user_id: int) -> Exchange:
        return self.exchanges.setdefault(message_id, Exchange(user_id, message_id))

    async def send(self, user_id: int, text: str, tag: str) -> Exchange:
        """The member writes ``text`` to the bot; returns once the emulator has sent it."""
        reply = await self.emulator.post("/dm", {"user_id": user_id, "text": text})
        exchange = self._exchange(int(reply["id"]), user_id)
        exchange.text, exchange.tag = text, tag
        return exchange

    async def send_steady(self, dms: Sequence[tuple[int, str]], rate: float, tag: str) -> float:
        """``dms`` (member, text) one every 1/``rate`` s, on a fixed schedule whatever the bot
        does (the load never waits for an answer); returns how late the last one left, in s."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        sending: list[asyncio.Task[Exchange]] = []
        late = 0.0
        for index, (user_id, text) in enumerate(dms):
            due = start + index / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            late = max(0.0, loop.time() - due)
            sending.append(asyncio.create_task(self.send(user_id, text, tag)))
        await asyncio.gather(*sending)
        return late

    async def wait_answered(self, within: float) -> bool:
        """Until the emulator holds as many answers in members' DMs as DMs were sent (False
        if ``within`` s pass first)."""
        deadline = time.monotonic() + within
        while True:
            counters = await self.emulator.get("/counters")
            if counters["dm_answers"] >= self.sent:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(POLL_S)

    async def read_log(self) -> None:
        """Pair the answers stored since the last read with the DMs they answer."""
        entries = await self.emulator.get("/dm-log", after=str(self._read))
        self._read += len(entries)
        for entry in entries:
            channel = int(entry["channel"])
            if "answer" not in entry:
                exchange = self._exchange(int(entry["id"]), self.users.get(channel, 0))
                exchange.stored_at = float(entry["at"])
                self._latest[channel] = exchange
                continue
            answer = Answer.of(entry)
            latest = self._latest.get(channel)
            if latest is None:
                self.strays.append(answer)
            else:
                latest.answers.append(answer)

    def tagged(self, tag: str) -> list[Exchange]:
        return [e for e in self.exchanges.values() if e.tag == tag]

    def check(self, judge: Judge) -> Problems:
        """Every DM answered exactly once, by an answer whose nonce names the DM (both bots
        make theirs from its id, so a resend is dropped by Discord) and that ``judge`` finds
        right; no answer where nobody wrote."""
        problems = Problems()
        for exchange in self.exchanges.values():
            where = f"member {exchange.user_id}, DM {exchange.message_id}"
            if exchange.stored_at is None:
                problems.error("DMs not in the emulator's log", where)
            if not exchange.answers:
                problems.error("DMs unanswered", f"{where}: {exchange.text[:80]!r}")
                continue
            for extra in exchange.answers[1:]:
                problems.error("answers beyond the first", f"{where}: {extra.content[:80]!r}")
            answer = exchange.answers[0]
            if answer.nonce is None or str(exchange.message_id) not in answer.nonce:
                problems.error("answers whose nonce names another DM", f"{where}: {answer.nonce}")
            wrong = judge(exchange, answer)
            if wrong is not None:
                problems.error(wrong, f"{where}: {exchange.text[:60]!r} -> {answer.content[:80]!r}")
        for stray in self.strays:
            problems.error("answers where no member wrote", stray.content[:80])
        return problems
