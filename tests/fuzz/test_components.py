"""Every button route the bot registered, pressed with forged and mangled custom_ids.

A forged id starts from a real one the bot sent (to this member or to another), then has its
parts swapped for other members' ids, edge numbers or junk, dropped, extended or cut short.
It is pressed on a real message of the bot's that the member can see, as a button or as a
select menu (a forged client can send either for any id).
"""

import copy
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.arena import Arena
from tests.fuzz.conftest import fuzz_each
from tests.fuzz.hostile import ForgedId, forged_ids, hostile_text, number_text
from tests.fuzz.invariants import ErrorLog, probe
from tests.fuzz.test_commands import actor_id

JSON = Any


@dataclass(frozen=True)
class Press:
    actor: str
    custom_id: ForgedId
    on: str  # the message it is on: the actor's in the server ("general") or in their DMs
    select: tuple[str, ...] | None  # None: a button; else a select menu sending these values


def presses(bases: list[str]) -> st.SearchStrategy[Press]:
    values = st.lists(number_text() | hostile_text(max_size=100), max_size=3).map(tuple)
    return st.builds(
        Press,
        actor=st.sampled_from(["bob", "moderator"]),
        custom_id=forged_ids(bases),
        on=st.sampled_from(["general", "dm"]),
        select=st.none() | values,
    )


def forged_message(base: dict[str, JSON], custom_id: str, select: tuple[str, ...] | None) -> Any:
    """The member's copy of `base` with one component carrying `custom_id`."""
    if select is None:
        component = {"type": 2, "style": 2, "label": "Press", "custom_id": custom_id}
    else:
        options = [{"label": v[:100] or "-", "value": v} for v in dict.fromkeys(select)]
        component = {
            "type": 3,
            "custom_id": custom_id,
            "options": options,
            "min_values": 0,
            "max_values": max(1, len(options)),
        }
    message = copy.deepcopy(base)
    message["components"] = [{"type": 1, "components": [component]}]
    return message


def test_every_button_route_with_forged_ids(arena: Arena, errors: ErrorLog) -> None:
    routes = sorted(arena.world.bot.router.button_routes)
    assert {"journal-delete", "mydata-forget", "checkin-snooze", "share-post"} <= set(routes)
    cases = {f"cr:{route}": presses(arena.real_ids.get(route, [f"cr:{route}"])) for route in routes}
    every_real_id = [i for ids in arena.real_ids.values() for i in ids]
    cases["any route, any prefix"] = presses(
        ["cr", "", "CR:journal-delete", "cr:nope", *every_real_id]
    )

    def check(press: Press) -> str:
        actor = actor_id(arena, press.actor)

        async def press_it() -> str:
            custom_id = await arena.forge(actor, press.custom_id)
            message = forged_message(arena.bases[actor, press.on], custom_id, press.select)

            async def send() -> Any:
                if press.select is None:
                    return await arena.emulator.click(actor, message, custom_id)
                values = list(dict.fromkeys(press.select))
                return await arena.emulator.select(actor, message, custom_id, values)

            what = f"{press!r}, custom_id {custom_id!r}"
            return await probe(arena, actor, send, what=what, errors=errors)

        return arena.run(press_it())

    fuzz_each(cases, check)
