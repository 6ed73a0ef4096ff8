"""Racing interactions, on SQLite and PostgreSQL: one entry per form, no error ids."""

import asyncio

from tests.e2e.conftest import World
from tests.e2e.test_journal import write
from tests.e2e.test_reflect import entries, open_reflect


async def test_a_new_member_submitting_one_form_twice_at_once_gets_one_entry(
    world_any_db: World,
) -> None:
    world = world_any_db
    modal = await open_reflect(world, world.alice, "purpose")  # first ever write: no user row
    submits = await asyncio.gather(
        *(world.emulator.submit_modal(world.alice, modal, {"text": "twice"}) for _ in range(2))
    )
    answers = [(await ix.message())["content"] for ix in submits]
    assert sorted("already saved" in a for a in answers) == [False, True], answers
    assert [e.text for e in await entries(world, world.alice)] == ["twice"]


async def test_an_edit_and_a_delete_at_once_end_cleanly(world_any_db: World) -> None:
    world = world_any_db
    await write(world, world.alice, "money", "contested")
    [entry] = await entries(world, world.alice)
    modal = await (await world.slash(world.alice, "journal edit", entry=str(entry.id))).modal()
    ask = await (await world.slash(world.alice, "journal delete", entry=str(entry.id))).message()
    edit, delete = await asyncio.gather(
        world.emulator.submit_modal(world.alice, modal, {"text": "rewritten"}),
        world.emulator.click(world.alice, ask, f"cr:journal-delete:{world.alice}:{entry.id}"),
    )
    edited, deleted = await edit.message(), await delete.message()
    assert deleted["content"] == "Deleted."
    assert "went wrong" not in edited["content"]
    if "no longer exists" in edited["content"]:  # the delete won: the text comes back
        assert world.emulator.attachment_bytes(edited, "your-reflection.txt") == b"rewritten"
    else:
        assert "Saved your edit" in edited["content"]
    assert await entries(world, world.alice) == []


async def test_a_form_for_a_point_that_no_longer_exists_hands_the_text_back(
    world: World,
) -> None:
    modal = await open_reflect(world, world.alice, "purpose")
    stale = dict(modal, custom_id="cr:reflect:retired:123")  # points.yaml changed meanwhile
    ix = await world.emulator.submit_modal(world.alice, stale, {"text": "still mine"})
    answer = await ix.message()
    assert "doesn't exist" in answer["content"]
    assert world.emulator.attachment_bytes(answer, "what-you-wrote.txt") == b"still mine"
    assert await entries(world, world.alice) == []
