"""/advice and /help through the emulator, as a member sees them."""

from tests.e2e.conftest import World


async def test_each_point_shows_its_own_advice_privately(world: World) -> None:
    content = world.bot.content
    for point in content.points:
        ix = await world.slash(world.alice, f"advice {point.slug}")
        message = await ix.message()
        assert ix.is_ephemeral()
        embed = message["embeds"][0]
        assert embed["title"] == point.heading
        assert point.advice[0][:40] in embed["description"]
        assert point.prompts[0] in embed["fields"][0]["value"]
        labels = [c["label"] for row in message["components"] for c in row["components"]]
        assert "Reflect" in labels


async def test_decades_quotes_the_essay(world: World) -> None:
    message = await (await world.slash(world.alice, "advice decades")).message()
    assert "Su Jianlin" in message["embeds"][0]["description"]
    assert "RoPE" in message["embeds"][0]["description"]


async def test_overview_lists_every_point_and_the_frame(world: World) -> None:
    message = await (await world.slash(world.alice, "advice overview")).message()
    description = message["embeds"][0]["description"]
    assert "figure it out yourself over the next year" in description
    assert "Knowing this, you can figure out" in description
    for point in world.bot.content.points:
        assert point.title in description


async def test_buttons_walk_from_the_overview_through_the_points(world: World) -> None:
    overview = await (await world.slash(world.alice, "advice overview")).message()
    first = await (
        await world.emulator.click(world.alice, overview, "cr:advice-page:purpose")
    ).message()
    assert first["embeds"][0]["title"].startswith("1.")
    second = await (
        await world.emulator.click(world.alice, first, "cr:advice-page:autonomy")
    ).message()
    assert second["embeds"][0]["title"].startswith("2.")


async def test_advice_works_in_direct_messages(world: World) -> None:
    message = await (await world.dm_slash(world.alice, "advice money")).message()
    assert message["embeds"][0]["title"].startswith("4.")


async def test_help_lists_commands_and_privacy(world: World) -> None:
    ix = await world.slash(world.alice, "help")
    message = await ix.message()
    assert ix.is_ephemeral()
    text = str(message["embeds"][0])
    assert "`/advice` overview · purpose · autonomy" in text
    for name in ("reflect", "journal", "decide", "progress", "mydata", "help"):
        assert f"`/{name}`" in text
    assert "visible only to you" in text


async def test_forged_and_stale_buttons_get_a_clear_answer(world: World) -> None:
    overview = await (await world.slash(world.alice, "advice overview")).message()
    # The emulator only lets a member press buttons that exist, so forge one in the message.
    forged = dict(overview)
    forged["components"] = [
        {"type": 1, "components": [{"type": 2, "style": 2, "label": "x", "custom_id": cid}]}
        for cid in ("cr:advice-page:nonexistent", "cr:gone-feature:1", "not-ours")
    ]
    for custom_id in ("cr:advice-page:nonexistent", "cr:gone-feature:1", "not-ours"):
        ix = await world.emulator.click(world.alice, forged, custom_id)
        answer = await ix.message()
        assert ix.is_ephemeral()
        assert "no longer" in answer["content"]


async def test_commands_sync_once_then_only_when_changed(world: World) -> None:
    puts = [
        r for r in world.emulator.requests if r.method == "PUT" and r.path.endswith("/commands")
    ]
    assert len(puts) == 1
    names = {c["name"] for c in world.emulator.registered_commands()}
    assert {"advice", "help", "reflect", "journal", "decide", "progress", "mydata"} <= names
