"""Messages to the bot: hostile text in a DM (a reply to a check-in, or conversation) and in
a server message that mentions it.

The arena's clock stands at everyone's first check-in, so a reply is kept (a new reflection,
or added to the one that answered the check-in) and every later one lands in the same entry
until it is full. A newcomer with no check-ins is in conversation: answered, nothing kept. The
member's own message stays where they wrote it, so nothing they typed can be lost here; the
other invariants all apply (a mention's public answer pings nobody and shows no one's text).
"""

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from cogs.chat.fair_use import WINDOW as FAIR_USE_WINDOW
from tests.fuzz.arena import Arena
from tests.fuzz.conftest import fuzz_each
from tests.fuzz.hostile import hostile_text
from tests.fuzz.invariants import ErrorLog, probe
from tests.fuzz.test_commands import actor_id

DM_MAX = 4000  # a member with Nitro may send this much in one message


@dataclass(frozen=True)
class Reply:
    actor: str
    content: str


def test_dm_replies_with_hostile_text(arena: Arena, errors: ErrorLog) -> None:
    replies = st.builds(
        Reply, st.sampled_from(["bob", "moderator"]), hostile_text(max_size=DM_MAX + 100)
    )

    def check(reply: Reply) -> str:
        actor = actor_id(arena, reply.actor)

        async def send() -> Any:
            return await arena.emulator.send_dm(actor, reply.content)

        return arena.run(probe(arena, actor, send, what=repr(reply), errors=errors))

    fuzz_each({"a DM to the bot": replies}, check)


def test_conversation_dms_with_hostile_text(arena: Arena, errors: ErrorLog) -> None:
    newcomer = arena.emulator.add_user("newcomer")  # no check-ins: every DM is conversation
    arena.names[newcomer] = "newcomer"

    def check(content: str) -> str:
        async def send() -> Any:
            arena.world.clock.advance(FAIR_USE_WINDOW)  # each example a fresh minute
            return await arena.emulator.send_dm(newcomer, content)

        return arena.run(probe(arena, newcomer, send, what=repr(content), errors=errors))

    fuzz_each({"conversation in a DM": hostile_text(max_size=DM_MAX + 100)}, check)


def test_mentions_with_hostile_text(arena: Arena, errors: ErrorLog) -> None:
    mentions = st.builds(
        Reply, st.sampled_from(["bob", "moderator"]), hostile_text(max_size=DM_MAX - 30)
    )

    def check(mention: Reply) -> str:
        actor = actor_id(arena, mention.actor)

        async def send() -> Any:
            arena.world.clock.advance(FAIR_USE_WINDOW)  # each example a fresh minute
            channel = arena.channels["general"]
            return await arena.emulator.mention_bot(actor, channel, mention.content)

        return arena.run(probe(arena, actor, send, what=repr(mention), errors=errors))

    fuzz_each({"a mention in a server": mentions}, check)
