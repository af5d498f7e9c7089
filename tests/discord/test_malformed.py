"""Gateway payloads and interactions prepbot does not expect: each gets a clear answer or is ignored, and changes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bot import models, progress
from tests.discord.conftest import Bot
from tests.fakes.discord import Json

LEAKED_INTERNALS = ("Traceback", "Error", "Exception")


async def counts(bot: Bot) -> dict[str, int]:
    """What members and organizers see: standing answers, ratings that count, drills, channels, prompts.

    (A removal or deletion of a message never seen is remembered on purpose, so that its late add or
    post does not count; those rows change nothing that shows.)
    """
    async with bot.sessions() as session:
        def count(model: type[models.Base], *where: Any) -> Any:
            return session.scalar(select(func.count()).select_from(model).where(*where))
        return {
            "answers": await count(models.Answer, *progress.STANDING),
            "ratings": await count(models.Rating, models.Rating.counted.is_(True)),
            "drills": await count(models.Drill), "channels": await count(models.Channel), "prompts": await count(models.Prompt),
        }


async def test_odd_interactions_get_a_clear_answer_and_change_nothing(bot: Bot) -> None:
    fake = bot.fake
    await bot.setup_channel()
    thread = int((await bot.post_prompt())["id"])
    before = await counts(bot)
    odd: list[tuple[str, tuple[str, ...], list[Json]]] = [
        ("prep", ("setup",), [{"name": "time", "type": 4, "value": 900}]),  # a number where text belongs, a required option missing
        ("prep", ("setup",), [{"name": "time", "type": 3, "value": "09:00"}, {"name": "nonsense", "type": 3, "value": "x"}]),
        ("prep", ("explode",), []),  # a subcommand prepbot never had
        ("prep", (), []),  # the group alone
        ("prep", ("leaderboard",), [{"name": "period", "type": 3, "value": "\u202eyadhtnom" * 50}]),
        ("drill", (), [{"name": "topic", "type": 3, "value": "\x00" * 10 + "x" * 6000}]),
        ("nosuchcommand", (), []),
    ]
    for command, path, options in odd:
        interaction = await fake.answered(await fake.invoke(fake.organizer, command, *path, raw_options=options), timeout=15)
        text = interaction.reply_text()
        assert text and len(interaction.callbacks) == 1, (command, path, options, interaction)
        assert not any(word in text for word in LEAKED_INTERNALS), (command, path, text)
    assert await counts(bot) == before
    await bot.answer(fake.alice, thread, "Still answering.")
    assert "Answers given: 1" in await bot.command(fake.alice, "stats")


async def test_gateway_events_about_things_prepbot_never_saw_change_nothing(bot: Bot) -> None:
    fake = bot.fake
    await bot.setup_channel()
    thread = int((await bot.post_prompt())["id"])
    before = await counts(bot)
    guild = str(fake.guild_id)
    member = {k: v for k, v in fake.alice.member_json(fake.started).items() if k != "user"}
    await fake.dispatch("MESSAGE_REACTION_ADD", {  # a custom emoji named like a keycap, on a message nobody knows
        "user_id": str(fake.bob.id), "channel_id": str(thread), "message_id": str(fake.new_id()), "guild_id": guild,
        "member": fake.bob.member_json(fake.started), "emoji": {"id": str(fake.new_id()), "name": "5\ufe0f\u20e3"},
        "burst": False, "burst_colors": [], "type": 0})
    await fake.dispatch("MESSAGE_REACTION_REMOVE", {
        "user_id": str(fake.bob.id), "channel_id": str(thread), "message_id": str(fake.new_id()), "guild_id": guild,
        "emoji": {"id": None, "name": "5\ufe0f\u20e3"}, "burst": False, "type": 0})
    await fake.dispatch("MESSAGE_DELETE", {"id": str(fake.new_id()), "channel_id": str(thread), "guild_id": guild})
    await fake.dispatch("MESSAGE_CREATE", {  # a message in a channel that does not exist
        **fake._message(fake.channel_id, fake.alice, content="hello"), "channel_id": str(fake.new_id()), "guild_id": guild,
        "member": member})
    await bot.settle()
    assert await counts(bot) == before
    await bot.answer(fake.alice, thread, "Still answering.")
    assert "Answers given: 1" in await bot.command(fake.alice, "stats")
