"""/journal list, edit and delete: paging, autocomplete, and only ever your own entries."""

from datetime import timedelta
from typing import Any

from tests.e2e.conftest import World
from tests.e2e.test_reflect import entries, open_reflect, submit


async def write(world: World, user: int, point: str, text: str, comfort: str = "3") -> None:
    await submit(world, user, await open_reflect(world, user, point), text, [comfort])
    world.clock.advance(timedelta(hours=1))


def field_names(message: dict[str, Any]) -> list[str]:
    return [f["name"] for f in message["embeds"][0]["fields"]]


async def test_list_pages_newest_first_and_only_the_owner_can_turn(world: World) -> None:
    for index in range(7):
        await write(world, world.alice, "purpose" if index % 2 else "money", f"entry {index}")
    ix = await world.slash(world.alice, "journal list")
    first = await ix.message()
    assert ix.is_ephemeral()
    assert "entry 6" in first["embeds"][0]["fields"][0]["value"]
    assert len(first["embeds"][0]["fields"]) == 5
    assert "Page 1 of 2" in first["embeds"][0]["footer"]["text"]
    next_id = f"cr:journal-page:{world.alice}:-:1"
    intruder = await world.emulator.click(world.bob, first, next_id)
    assert "someone else" in (await intruder.message())["content"]
    second = await (await world.emulator.click(world.alice, first, next_id)).message()
    assert [v["value"].split("\n")[1] for v in second["embeds"][0]["fields"]] == [
        "entry 1",
        "entry 0",
    ]
    money = await (await world.slash(world.alice, "journal list", point="money")).message()
    assert all("Less money" in name for name in field_names(money))


async def test_empty_journal_and_unknown_point(world: World) -> None:
    empty = await (await world.slash(world.alice, "journal list")).message()
    assert "no reflections" in empty["content"]
    unknown = await (await world.slash(world.alice, "journal list", point="nonsense")).message()
    assert "doesn't exist" in unknown["content"]


async def test_edit_through_autocomplete_keeps_the_date(world: World) -> None:
    await write(world, world.alice, "purpose", "original words", "2")
    [entry] = await entries(world, world.alice)
    choices = await world.emulator.autocomplete(
        world.alice, "journal edit", focused="entry", value="orig"
    )
    assert [c["value"] for c in choices] == [str(entry.id)]
    assert "original words" in choices[0]["name"]
    assert (
        await world.emulator.autocomplete(world.bob, "journal edit", focused="entry", value="")
        == []
    )
    modal = await (await world.slash(world.alice, "journal edit", entry=str(entry.id))).modal()
    assert "original words" in str(modal)  # pre-filled
    world.clock.advance(timedelta(days=3))
    answer = await submit(world, world.alice, modal, "better words", ["5"])
    assert "Saved your edit" in answer["content"]
    [edited] = await entries(world, world.alice)
    assert (edited.text, edited.comfort, edited.created_at) == ("better words", 5, entry.created_at)
    assert edited.edited_at == world.clock.now()


async def test_other_members_ids_guesses_and_junk_are_not_found(world: World) -> None:
    await write(world, world.alice, "purpose", "alice only")
    [entry] = await entries(world, world.alice)
    for user, value in ((world.bob, str(entry.id)), (world.alice, "999999"), (world.alice, "abc")):
        for command in ("journal edit", "journal delete"):
            ix = await world.slash(user, command, entry=value)
            answer = await ix.message()
            assert ix.is_ephemeral()
            assert "not found" in answer["content"].lower()
    assert [e.text for e in await entries(world, world.alice)] == ["alice only"]


async def test_delete_asks_first_and_cancel_keeps(world: World) -> None:
    await write(world, world.alice, "fame", "to delete")
    [entry] = await entries(world, world.alice)
    ask = await (await world.slash(world.alice, "journal delete", entry=str(entry.id))).message()
    assert "for good" in ask["content"]
    keep = await (
        await world.emulator.click(world.alice, ask, f"cr:journal-keep:{world.alice}")
    ).message()
    assert "Nothing was deleted" in keep["content"]
    assert len(await entries(world, world.alice)) == 1
    ask = await (await world.slash(world.alice, "journal delete", entry=str(entry.id))).message()
    confirm_id = f"cr:journal-delete:{world.alice}:{entry.id}"
    refused = await (await world.emulator.click(world.bob, ask, confirm_id)).message()
    assert "someone else" in refused["content"]
    done = await (await world.emulator.click(world.alice, ask, confirm_id)).message()
    assert done["content"] == "Deleted."
    assert await entries(world, world.alice) == []


async def test_an_edit_racing_a_delete_hands_the_text_back(world: World) -> None:
    await write(world, world.alice, "decades", "soon gone")
    [entry] = await entries(world, world.alice)
    modal = await (await world.slash(world.alice, "journal edit", entry=str(entry.id))).modal()
    ask = await (await world.slash(world.alice, "journal delete", entry=str(entry.id))).message()
    # The delete lands first (its answer is awaited), then the form opened before it is sent.
    deleted = world.emulator.click(world.alice, ask, f"cr:journal-delete:{world.alice}:{entry.id}")
    await (await deleted).message()
    answer = await submit(world, world.alice, modal, "my careful rewrite")
    assert "no longer exists" in answer["content"]
    assert world.emulator.attachment_bytes(answer, "your-reflection.txt") == b"my careful rewrite"


async def test_a_page_of_the_longest_entries_stays_within_discords_limits(world: World) -> None:
    for index in range(5):
        await write(world, world.alice, "purpose", f"{index} " + "w" * 3990)
    message = await (await world.slash(world.alice, "journal list")).message()
    embed = message["embeds"][0]
    assert len(embed["fields"]) == 5
    assert all(field["value"].endswith("…") for field in embed["fields"])
    # The fixture fails the test if any request broke a limit (field 1024, embed 6000, ...).
