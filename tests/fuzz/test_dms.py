"""Direct messages to the bot: hostile text written as a reply to a check-in, or out of the blue.

The arena's clock stands at everyone's first check-in, so a reply is kept (a new reflection,
or added to the one that answered the check-in) and every later one lands in the same entry
until it is full. The member's own message stays in their DMs, so nothing they typed can be
lost here; the other invariants all apply.
"""

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

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
