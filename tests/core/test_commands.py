"""/prep commands: organizer rights, validation with specific messages, and nothing changed on error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import models
from bot.core import PrepBot
from bot.fake_chat import FakeChat
from tests.builders import Session
from tests.conftest import FakeClock


async def channel_rows(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[object, ...]]:
    async with sessions() as session:
        rows = (await session.scalars(select(models.Channel))).all()
        return [(c.post_time, c.timezone, c.weekdays, c.track, c.paused) for c in rows]


async def test_setup_schedules_the_channel_and_says_when_the_next_question_goes_up(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    clock.set(datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    reply = await Session(core, chat, clock).command("setup 09:30 Europe/Berlin mon,wed,fri mini", admin=True)
    assert reply == ("Done. Schedule: 09:30 Europe/Berlin, Mon, Wed, Fri, track `mini`. "
                     "Next question: Mon 02 Mar at 09:30 (08:30 UTC).")


@pytest.mark.parametrize(("args", "named"), [
    ("25:99 Europe/Berlin", "`25:99` is not a time of day"),
    ("09:00 Mars/Olympus", "`Mars/Olympus` is not an IANA time zone"),
    ("09:00 UTC funday", "`funday` is not a set of weekdays"),
    ("09:00 UTC daily no-such-track", "`no-such-track` is not a question track. Available tracks: `mini`."),
    ("09:00", "/prep setup takes a time, a time zone"),
    ("09:00 UTC daily mini extra", "/prep setup takes a time, a time zone"),
])
async def test_bad_setup_arguments_are_named_and_nothing_changes(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession], args: str, named: str,
) -> None:
    members = Session(core, chat, clock)
    await members.setup("08:00 UTC daily")
    before = await channel_rows(sessions)
    reply = await members.command(f"setup {args}", admin=True)
    assert named in reply
    assert await channel_rows(sessions) == before


async def test_every_bad_argument_is_named_in_one_reply(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    reply = await Session(core, chat, clock).command("setup 25:99 Mars/Olympus", admin=True)
    assert reply.startswith("Nothing was changed.") and "`25:99`" in reply and "`Mars/Olympus`" in reply


@pytest.mark.parametrize("command", ["setup 09:00 UTC", "pause", "resume", "skip", "now", "track mini"])
async def test_organizer_commands_are_refused_to_members_and_change_nothing(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession], command: str,
) -> None:
    members = Session(core, chat, clock)
    await members.setup("08:00 UTC daily")
    before = await channel_rows(sessions)
    reply = await members.command(command, who="member")
    assert reply.startswith(f"Only organizers can run /prep {command.split()[0]}")
    assert await channel_rows(sessions) == before
    assert chat.prompts == []


async def test_platform_admins_and_listed_organizers_may_run_organizer_commands(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = Session(core, chat, clock)
    assert (await members.command("setup 09:00 UTC", who="workspace-admin", admin=True)).startswith("Done.")
    assert (await members.command("pause", who="U-ORGANIZER")).startswith("Paused")


async def test_pause_resume_and_their_repeats_say_what_happened(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    assert (await members.command("pause")).startswith("Paused: no questions go up until /prep resume.")
    assert (await members.command("pause")).startswith("The schedule is already paused.")
    assert (await members.command("resume")).startswith("Resumed.")
    assert (await members.command("resume")).startswith("The schedule is already running.")


async def test_commands_that_need_a_schedule_say_how_to_make_one(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = Session(core, chat, clock)
    for command in ("pause", "now", "stats", "leaderboard", "rubric", "schedule", "skip"):
        assert "This channel has no practice schedule yet" in await members.command(command)


async def test_now_posts_once_and_then_says_it_is_already_up(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    assert (await members.command("now")).startswith("Posted today's question")
    assert "is already up" in await members.command("now")
    assert len(chat.prompts) == 1


async def test_track_switches_the_track_and_refuses_an_unknown_one(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    assert "`astrology` is not a question track. Available tracks: `mini`." in await members.command("track astrology")
    assert "Usage: /prep track <name>" in await members.command("track")
    assert "now practises the `mini` track" in await members.command("track mini")


async def test_unknown_commands_and_bad_periods_are_named(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    assert "`dance` is not a /prep command. Try /prep help" in await members.command("dance")
    assert "`fortnight` is not a period" in await members.command("leaderboard fortnight")


async def test_help_lists_every_command(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    text = await Session(core, chat, clock).command("help", who="anyone")
    for command in ("/drill", "stats", "leaderboard", "rubric", "setup", "pause", "resume", "skip", "now", "track"):
        assert command in text
    assert text == await Session(core, chat, clock).command("", who="anyone")


async def test_rubric_shows_the_latest_questions_rubric(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    assert "No question has been posted here yet" in await members.command("rubric")
    await members.post_now()
    assert "A strong answer covers:" in await members.command("rubric")


@pytest.mark.parametrize("text", ["x" * 600, "setup " + "9" * 1000, "\x00\x01", "leaderboard 'or 1=1;--", "🙂 " * 50])
async def test_hostile_command_text_gets_a_clear_reply_and_changes_nothing(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession], text: str,
) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    before = await channel_rows(sessions)
    reply = await members.command(text, admin=True)
    assert reply and await channel_rows(sessions) == before
