"""/reflect and the Reflect button: the modal, what is saved, and bad input that loses nothing."""

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from db.journal import list_page
from db.models import Reflection
from tests.e2e.conftest import World


async def open_reflect(world: World, user: int, point: str) -> dict[str, Any]:
    ix = await world.slash(user, "reflect", point=point)
    return await ix.modal()


async def submit(
    world: World,
    user: int,
    modal: dict[str, Any],
    text: str,
    comfort: list[str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    values: dict[str, str | list[str]] = {"text": text}
    if comfort is not None:
        values["comfort"] = comfort
    ix = await world.emulator.submit_modal(user, modal, values, **kwargs)
    answer = await ix.message()
    assert ix.is_ephemeral()
    return answer


async def entries(world: World, user: int) -> list[Any]:
    async with world.database.read() as session:
        page = await list_page(
            session, world.bot.cipher, user_id=user, point=None, page=0, per_page=50
        )
    return page.entries


def modal_text(modal: dict[str, Any]) -> str:
    return str(modal)


async def test_reflect_saves_privately_and_shows_coverage(world: World) -> None:
    modal = await open_reflect(world, world.alice, "purpose")
    purpose = world.bot.content.point("purpose")
    assert modal["title"] == purpose.title
    assert purpose.prompts[0] in modal_text(modal)
    answer = await submit(world, world.alice, modal, "Because impact lasts.", ["4"])
    assert "▰▱▱▱▱▱ 1/6" in answer["content"]
    assert "/advice autonomy" in answer["content"]
    [entry] = await entries(world, world.alice)
    assert (entry.point, entry.text, entry.comfort) == ("purpose", "Because impact lasts.", 4)


async def test_reflect_button_under_a_point_opens_the_same_form(world: World) -> None:
    page = await (await world.slash(world.alice, "advice decades")).message()
    modal = await (await world.emulator.click(world.alice, page, "cr:reflect:decades")).modal()
    assert modal["title"] == world.bot.content.point("decades").title
    await submit(world, world.alice, modal, "Twelve years is fine by me.", ["5"])
    assert [e.point for e in await entries(world, world.alice)] == ["decades"]


async def test_later_reflections_use_the_revisit_prompt(world: World) -> None:
    await submit(world, world.alice, await open_reflect(world, world.alice, "money"), "first")
    world.clock.advance(timedelta(days=91))
    modal = await open_reflect(world, world.alice, "money")
    point = world.bot.content.point("money")
    assert modal["title"].startswith("Revisit")
    assert point.revisit_prompt in modal_text(modal)
    answer = await submit(world, world.alice, modal, "now")
    assert "revisit" in answer["content"]


async def test_the_same_modal_submitted_twice_saves_one_entry(world: World) -> None:
    modal = await open_reflect(world, world.alice, "fame")
    await submit(world, world.alice, modal, "likes are not the point")
    again = await submit(world, world.alice, modal, "likes are not the point")
    assert "already saved" in again["content"]
    assert len(await entries(world, world.alice)) == 1


async def test_whitespace_only_is_refused_clearly(world: World) -> None:
    modal = await open_reflect(world, world.alice, "fame")
    answer = await submit(world, world.alice, modal, " \n\t ")
    assert "empty" in answer["content"]
    assert await entries(world, world.alice) == []


async def test_text_at_the_limit_saves_and_over_it_comes_back_whole(world: World) -> None:
    modal = await open_reflect(world, world.alice, "obscurity")
    await submit(world, world.alice, modal, "a" * 4000)
    assert len((await entries(world, world.alice))[0].text) == 4000
    too_long = "b" * 4001
    modal = await open_reflect(world, world.alice, "obscurity")
    answer = await submit(world, world.alice, modal, too_long, enforce_client_limits=False)
    assert "4001 characters" in answer["content"]
    assert world.emulator.attachment_bytes(answer, "your-reflection.txt") == too_long.encode()
    assert len(await entries(world, world.alice)) == 1


async def test_bad_ratings_keep_the_text_and_say_so(world: World) -> None:
    for index, rating in enumerate((["6"], ["three"], [""])):
        modal = await open_reflect(world, world.alice, "autonomy")
        answer = await submit(
            world, world.alice, modal, f"text {index}", rating, enforce_client_limits=False
        )
        assert "Saved" in answer["content"]
        if rating != [""]:
            assert "saved without one" in answer["content"]
    saved = await entries(world, world.alice)
    assert sorted(e.text for e in saved) == ["text 0", "text 1", "text 2"]
    assert {e.comfort for e in saved} == {None}


async def test_mentions_and_control_characters(world: World) -> None:
    text = "@everyone <@&123> <@456>\x00\x07 hello\r\nworld"
    modal = await open_reflect(world, world.alice, "purpose")
    await submit(world, world.alice, modal, text)
    [entry] = await entries(world, world.alice)
    assert entry.text == "@everyone <@&123> <@456> hello\nworld"
    listing = await (await world.slash(world.alice, "journal list")).message()
    assert "@everyone" in str(listing["embeds"])
    assert_nobody_pinged(world)


def assert_nobody_pinged(world: World) -> None:
    """Every message body the bot sent says, explicitly, that it mentions no one."""
    sent = 0
    for record in world.emulator.requests:
        body = record.json if isinstance(record.json, dict) else {}
        data = body.get("data") if isinstance(body.get("data"), dict) else body
        if data.get("content") or data.get("embeds"):
            sent += 1
            assert data.get("allowed_mentions") == {"parse": []}, (record.path, data)
    assert sent


async def test_reflecting_on_every_point_completes_coverage(world: World) -> None:
    answer: dict[str, Any] = {}
    for slug in world.bot.content.slugs:
        answer = await submit(
            world, world.alice, await open_reflect(world, world.alice, slug), slug
        )
    assert "▰▰▰▰▰▰ 6/6" in answer["content"]
    assert "/progress" in answer["content"]
    async with world.database.read() as session:
        count = await session.scalar(select(func.count()).select_from(Reflection))
    assert count == 6
