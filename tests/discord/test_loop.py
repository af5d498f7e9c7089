"""The whole practice loop on Discord: the real discord.py client against the fake Discord."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.discord import client as client_module

from tests.discord.conftest import KEYCAPS, Bot
from tests.fakes.discord import EPHEMERAL_FLAG, message_text


async def test_a_server_gets_the_whole_loop_question_thread_answers_ratings_drills_and_standings(bot: Bot) -> None:
    fake = bot.fake
    await bot.setup_channel()
    prompt = await bot.post_prompt()
    thread_id = int(prompt["id"])

    send = fake.calls_to("POST", rf"/channels/{fake.channel_id}/messages")[0]
    assert send.body["nonce"] and send.body["enforce_nonce"] is True
    assert prompt["embeds"][0]["title"].startswith("Question of the day")
    assert fake.calls_to("POST", rf"/channels/{fake.channel_id}/messages/{thread_id}/threads")
    assert fake.thread(thread_id)["parent_id"] == str(fake.channel_id)  # type: ignore[index]

    alice = await bot.answer(fake.alice, thread_id, "I would start from the queue's service levels.")
    bob = await bot.answer(fake.bob, thread_id, "I would look at the escalation paths first.")
    await fake.wait_for(lambda: fake.dms_to(fake.alice), what="alice's rubric")
    assert "Compare your answer with the rubric" in message_text(fake.dms_to(fake.alice)[0])

    await fake.react(fake.bob, thread_id, int(alice["id"]), KEYCAPS[5])
    await fake.react(fake.carol, thread_id, int(alice["id"]), KEYCAPS[4])
    await fake.react(fake.alice, thread_id, int(bob["id"]), KEYCAPS[3])
    await bot.settle()
    assert await bot.ratings(alice["id"]) == {fake.bob.id: 5, fake.carol.id: 4}

    drill = await fake.answered(await fake.invoke(fake.alice, "drill", channel_id=thread_id))
    assert not drill.ephemeral
    assert f"<@{fake.alice.id}> Follow-up 1 of" in drill.reply_text()
    assert any(m["id"] == drill.original["id"] for m in fake.channel_messages(thread_id))  # type: ignore[index]
    again = await fake.answered(await fake.invoke(fake.alice, "drill", channel_id=thread_id))
    assert "Follow-up 2 of" in again.reply_text()

    stats = await fake.answered(await fake.invoke(fake.alice, "prep", "stats"))
    assert stats.ephemeral
    assert "Answers given: 1" in stats.reply_text() and "Ratings received: 2 (average 4.50)" in stats.reply_text()
    board = await bot.command(fake.carol, "leaderboard", period="all")
    assert board.index(f"<@{fake.alice.id}>") < board.index(f"<@{fake.bob.id}>")


async def test_every_interaction_is_answered_within_three_seconds_and_slow_ones_are_deferred(bot: Bot) -> None:
    fake = bot.fake
    await bot.setup_channel()
    now = await fake.answered(await fake.invoke(fake.organizer, "prep", "now"))
    assert now.callbacks[0]["type"] == 5 and now.callbacks[0]["data"]["flags"] & EPHEMERAL_FLAG
    # The deferred response is completed by editing it (idempotent), never by a follow-up message (which a retry would double).
    assert not now.followups and "Posted today's question" in now.reply_text()
    help_ = await fake.answered(await fake.invoke(fake.alice, "prep", "help"))
    assert help_.callbacks[0]["type"] == 4
    for interaction in fake.interactions.values():
        assert interaction.answered_at is not None and interaction.answered_at - interaction.sent_at < 3


async def test_a_reply_slower_than_the_acknowledgement_window_is_deferred_then_followed_up(
    bot: Bot, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_module, "ACK_SECONDS", 0.0)  # as if the database were slow today
    fake = bot.fake
    await bot.setup_channel()
    stats = await fake.answered(await fake.invoke(fake.alice, "prep", "stats"))
    assert stats.callbacks[0]["type"] == 5 and stats.ephemeral
    assert "Your practice so far" in stats.reply_text()
    thread = int((await bot.post_prompt())["id"])
    drill = await fake.answered(await fake.invoke(fake.alice, "drill", channel_id=thread))
    assert drill.callbacks[0]["type"] == 5 and not drill.ephemeral  # deferred in public: the follow-up shows in the thread
    assert "Follow-up 1 of" in drill.reply_text()


async def test_drill_outside_a_thread_gives_a_private_practice_question(bot: Bot) -> None:
    await bot.setup_channel()
    drill = await bot.fake.answered(await bot.fake.invoke(bot.fake.alice, "drill", options={"topic": "data"}))
    assert drill.ephemeral
    assert "Practice question · Data & Technical" in drill.reply_text()


async def test_leaderboard_rejects_nothing_it_offers_and_help_names_discords_organizer_right(bot: Bot) -> None:
    await bot.setup_channel()
    assert "Leaderboard · this month" in await bot.command(bot.fake.alice, "leaderboard", period="month")
    assert "Manage Server" in await bot.command(bot.fake.alice, "help")


async def test_timezone_autocomplete_offers_matching_zones(bot: Bot) -> None:
    fake = bot.fake
    interaction = await fake.invoke(fake.organizer, "prep", "setup", options={"time": "09:00", "timezone": "europe/ber"},
                                    autocomplete="timezone")
    await fake.wait_for(lambda: interaction.callbacks, what="the autocomplete answer")
    callback = interaction.callbacks[0]
    assert callback["type"] == 8
    assert [c["value"] for c in callback["data"]["choices"]] == ["Europe/Berlin"]


async def test_a_member_without_manage_server_cannot_run_organizer_subcommands(bot: Bot) -> None:
    fake = bot.fake
    attempts: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (("setup",), {"time": "09:00", "timezone": "UTC"}), (("now",), {}), (("pause",), {}), (("skip",), {}),
        (("track",), {"name": "mini"})]
    for path, options in attempts:
        reply = await bot.command(fake.alice, *path, **options)
        assert reply.startswith(f"Only organizers can run /prep {path[0]}"), reply
        assert "Manage Server" in reply and "Nothing was changed" in reply
    assert not fake.bot_posts()
    assert "no practice schedule yet" in await bot.command(fake.alice, "schedule")


async def test_bad_setup_input_gets_a_specific_message_and_changes_nothing(bot: Bot) -> None:
    reply = await bot.command(bot.fake.organizer, "setup", time="25:99", timezone="Mars/Olympus")
    assert reply.startswith("Nothing was changed.") and "25:99" in reply and "Mars/Olympus" in reply
    assert "no practice schedule yet" in await bot.command(bot.fake.alice, "schedule")


async def test_a_command_prepbot_does_not_know_gets_a_clear_answer(bot: Bot) -> None:
    reply = await bot.fake.answered(await bot.fake.invoke(bot.fake.alice, "prep", "retired-command"))
    assert reply.ephemeral and "could not run that command" in reply.reply_text()


async def test_the_gateway_handshake_identifies_once_and_heartbeats_are_acknowledged(bot: Bot) -> None:
    fake = bot.fake
    await fake.wait_for(lambda: fake.heartbeats >= 1, what="a heartbeat")
    [identify] = fake.identifies
    assert identify["properties"] and "shard" not in identify  # one connection, unsharded
    client = bot.adapter.client
    assert client is not None
    await fake.wait_for(lambda: client.latency < 1, what="the heartbeat ACK to be measured")  # type: ignore[attr-defined]


async def test_commands_are_synced_globally_on_start_as_one_prep_group_and_drill(bot: Bot) -> None:
    fake = bot.fake
    assert fake.calls_to("PUT", rf"/applications/{fake.application_id}/commands")
    assert not fake.guild_commands
    commands = {c["name"]: c for c in fake.global_commands}
    assert set(commands) == {"prep", "drill"}
    subcommands = {o["name"] for o in commands["prep"]["options"]}
    assert {"help", "stats", "leaderboard", "setup", "pause", "resume", "skip", "now", "track"} <= subcommands
    setup = next(o for o in commands["prep"]["options"] if o["name"] == "setup")
    assert next(o for o in setup["options"] if o["name"] == "timezone")["autocomplete"] is True
    leaderboard = next(o for o in commands["prep"]["options"] if o["name"] == "leaderboard")
    assert [c["value"] for c in leaderboard["options"][0]["choices"]] == ["week", "month", "all"]


async def test_organizer_commands_pause_resume_skip_and_track_work_for_an_organizer(bot: Bot) -> None:
    fake = bot.fake
    await bot.setup_channel()
    assert (await bot.command(fake.organizer, "pause")).startswith("Paused")
    assert (await bot.command(fake.organizer, "resume")).startswith("Resumed")
    assert (await bot.command(fake.organizer, "skip")).startswith("Skipped the question of")
    assert "now practises the `mini` track" in await bot.command(fake.organizer, "track", name="mini")
    assert "is not a question track" in await bot.command(fake.organizer, "track", name="nope")
