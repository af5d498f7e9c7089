"""Ratings by keycap reactions, answer edits and deletes, on the raw gateway events."""

from __future__ import annotations

import pytest

from tests.discord.conftest import KEYCAPS, Bot, Launch
from tests.fakes.discord import FakeDiscord, Json


@pytest.fixture
async def thread(bot: Bot) -> int:
    await bot.setup_channel()
    return int((await bot.post_prompt())["id"])


@pytest.fixture
async def answer(bot: Bot, thread: int) -> Json:
    return await bot.answer(bot.fake.alice, thread, "My answer: define the metric, then the threshold.")


async def test_removing_the_latest_reaction_restores_the_earlier_rating(bot: Bot, thread: int, answer: Json) -> None:
    fake, message = bot.fake, int(answer["id"])
    await fake.react(fake.bob, thread, message, KEYCAPS[4])
    await fake.react(fake.bob, thread, message, KEYCAPS[5])
    await bot.settle()
    assert await bot.ratings(message) == {fake.bob.id: 5}
    await fake.unreact(fake.bob, thread, message, KEYCAPS[5])
    await bot.settle()
    assert await bot.ratings(message) == {fake.bob.id: 4}
    await fake.unreact(fake.bob, thread, message, KEYCAPS[4])
    await bot.settle()
    assert await bot.ratings(message) == {}


async def test_each_rater_has_one_rating_per_answer(bot: Bot, thread: int, answer: Json) -> None:
    fake, message = bot.fake, int(answer["id"])
    for score in (1, 3, 2):
        await fake.react(fake.bob, thread, message, KEYCAPS[score])
    await fake.react(fake.carol, thread, message, KEYCAPS[5])
    await bot.settle()
    assert await bot.ratings(message) == {fake.bob.id: 2, fake.carol.id: 5}
    assert "Ratings received: 2 (average 3.50)" in await bot.command(fake.alice, "stats")


async def test_rating_your_own_answer_a_bots_reaction_and_other_emoji_do_not_count(bot: Bot, thread: int, answer: Json) -> None:
    fake, message = bot.fake, int(answer["id"])
    await fake.react(fake.alice, thread, message, KEYCAPS[5])
    await fake.react(fake.other_bot, thread, message, KEYCAPS[5])
    await fake.react(fake.bob, thread, message, "👍")
    await fake.react(fake.bob, thread, message, "6\ufe0f\u20e3")
    await bot.settle()
    assert "Ratings received: 0" in await bot.command(fake.alice, "stats")
    assert "No rated answers yet" in await bot.command(fake.alice, "leaderboard", period="all")


async def test_a_reaction_on_the_question_itself_is_not_a_rating(bot: Bot, thread: int, answer: Json) -> None:
    fake = bot.fake
    await fake.react(fake.bob, fake.channel_id, thread, KEYCAPS[5])
    await bot.settle()
    assert "No rated answers yet" in await bot.command(fake.alice, "leaderboard", period="all")


async def test_a_bots_reply_in_the_thread_is_not_an_answer(bot: Bot, thread: int) -> None:
    fake = bot.fake
    message = await fake.post(fake.other_bot, thread, "beep")
    await bot.settle()
    assert await bot.answer_row(message["id"]) is None


async def test_editing_an_answer_updates_its_text(bot: Bot, thread: int, answer: Json) -> None:
    await bot.fake.edit(thread, int(answer["id"]), "Better: define the metric, the threshold and the owner.")
    await bot.settle()
    row = await bot.answer_row(answer["id"])
    assert row is not None and row.text == "Better: define the metric, the threshold and the owner."


async def test_deleting_an_answer_withdraws_it_and_its_ratings(bot: Bot, thread: int, answer: Json) -> None:
    fake, message = bot.fake, int(answer["id"])
    await fake.react(fake.bob, thread, message, KEYCAPS[5])
    await bot.settle()
    assert "Ratings received: 1" in await bot.command(fake.alice, "stats")
    await fake.delete(thread, message)
    await bot.settle()
    row = await bot.answer_row(message)
    assert row is not None and row.withdrawn_at is not None and row.text is None
    stats = await bot.command(fake.alice, "stats")
    assert "Answers given: 0" in stats and "Ratings received: 0" in stats


async def test_an_over_long_answer_is_refused_with_a_private_note_and_counts_after_shortening(bot: Bot, thread: int) -> None:
    fake = bot.fake
    message = await fake.post(fake.bob, thread, "x" * 12_001)
    await fake.wait_for(lambda: any("12,001 characters" in m["embeds"][0]["description"] for m in fake.dms_to(fake.bob)),
                        what="the note about the long answer")
    assert await bot.answer_row(message["id"]) is None
    await fake.edit(thread, int(message["id"]), "A short answer.")
    row = await bot.wait_for_answer(int(message["id"]))
    assert row.text == "A short answer."


async def test_an_answer_posted_the_moment_the_thread_opens_still_counts(bot: Bot) -> None:
    fake = bot.fake
    await bot.setup_channel()
    quick: list[Json] = []

    async def answer_at_once(thread_id: int) -> None:
        # Before the thread's REST response returns, so before the core has recorded the prompt.
        quick.append(await fake.post(fake.alice, thread_id, "First!"))

    fake.on_thread_created = answer_at_once
    await bot.post_prompt()
    row = await bot.wait_for_answer(int(quick[0]["id"]))
    assert row.text == "First!"


async def test_a_member_who_refuses_dms_still_answers_and_is_not_asked_again(bot: Bot, thread: int) -> None:
    fake = bot.fake
    fake.refuse_dms.add(fake.bob.id)
    await bot.answer(fake.bob, thread, "An answer from someone with DMs closed.")
    await fake.wait_for(lambda: any(c.status == 403 for c in fake.calls), what="the refused DM")
    too_long = await fake.post(fake.bob, thread, "x" * 12_001)
    await bot.settle()
    assert await bot.answer_row(too_long["id"]) is None
    refused = [c for c in fake.calls_to("POST", r"/channels/\d+/messages") if c.status == 403]
    assert len(refused) == 1


async def test_the_client_keeps_no_messages_in_memory(bot: Bot, thread: int, answer: Json) -> None:
    await bot.fake.react(bot.fake.bob, thread, int(answer["id"]), KEYCAPS[3])
    await bot.settle()
    assert await bot.ratings(answer["id"]) == {bot.fake.bob.id: 3}
    assert bot.adapter.client is not None and list(bot.adapter.client.cached_messages) == []


async def test_reactions_and_deletes_on_messages_the_client_never_cached_still_count(fake: FakeDiscord, launch: Launch) -> None:
    first = await launch(discord_message_content=True)
    await first.setup_channel()
    thread = int((await first.post_prompt())["id"])
    answer = await first.answer(fake.alice, thread, "An answer from before the restart.")
    doomed = await first.answer(fake.bob, thread, "Another one.")
    await first.stop()

    # A fresh client knows neither the messages nor, with the thread left out of GUILD_CREATE
    # (as archived threads are), the thread: it asks REST what the channel is.
    fake.threads_in_guild_create = False
    second = await launch(discord_message_content=True)
    assert second.adapter.client is not None and second.adapter.client._connection._get_message(int(answer["id"])) is None  # type: ignore[attr-defined]  # noqa: SLF001
    await fake.react(fake.bob, thread, int(answer["id"]), KEYCAPS[4])
    await fake.delete(thread, int(doomed["id"]))
    await second.settle()
    assert await second.ratings(answer["id"]) == {fake.bob.id: 4}
    assert fake.calls_to("GET", rf"/channels/{thread}")
    row = await second.answer_row(doomed["id"])
    assert row is not None and row.withdrawn_at is not None


async def test_events_from_a_channel_that_cannot_be_looked_up_are_ignored_and_it_is_asked_about_once(bot: Bot, thread: int) -> None:
    fake = bot.fake
    unknown = fake.new_id()
    for _ in range(3):
        await fake.react(fake.bob, unknown, fake.new_id(), KEYCAPS[5])
    await bot.settle()
    assert [c.status for c in fake.calls_to("GET", rf"/channels/{unknown}")] == [404]
