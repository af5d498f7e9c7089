"""Organizer commands on Slack: workspace admins and owners (from users.info) or PREP_ORGANIZERS; everyone else is refused."""

from __future__ import annotations

import pytest

from bot.commands import ORGANIZER_COMMANDS
from tests.slack.conftest import ADMIN, CHANNEL, LISTED_ORGANIZER, Slack

REFUSAL = "Only organizers can run /prep"


@pytest.mark.parametrize("command", sorted(ORGANIZER_COMMANDS))
async def test_a_member_is_refused_every_organizer_command_and_nothing_changes(slack: Slack, command: str) -> None:
    await slack.setup("09:00 UTC daily")
    before = await slack.command("schedule", "UBOB")
    args = {"setup": "setup 10:00 Europe/Berlin", "track": "track mini"}.get(command, command)
    reply = await slack.command(args, "UBOB")
    assert reply.startswith(f"{REFUSAL} {command}") and "Nothing was changed." in reply
    assert await slack.command("schedule", "UBOB") == before
    assert slack.fake.posts(CHANNEL, top_level=True) == []


async def test_a_workspace_owner_is_an_organizer(slack: Slack) -> None:
    slack.fake.add_user("UOWNER", is_owner=True)
    assert (await slack.command("setup 07:15 Asia/Kolkata mon-fri", "UOWNER")).startswith("Done.")


async def test_a_user_listed_in_prep_organizers_is_an_organizer(slack: Slack) -> None:
    assert (await slack.command("setup 07:15 UTC", LISTED_ORGANIZER)).startswith("Done.")


async def test_when_slack_cannot_say_who_is_an_admin_the_command_says_so_and_changes_nothing(slack: Slack) -> None:
    slack.fake.fail("users.info", "fatal_error")
    reply = await slack.command("setup 07:15 UTC", ADMIN)
    assert reply.startswith("Slack did not tell prepbot whether you are a workspace admin") and "Nothing was changed" in reply
    assert (await slack.command("schedule", ADMIN)).startswith("This channel has no practice schedule yet.")
    assert (await slack.command("setup 07:15 UTC", ADMIN)).startswith("Done."), "the next try asks Slack again"


async def test_a_failed_admin_lookup_does_not_stop_member_commands_or_listed_organizers(slack: Slack) -> None:
    slack.fake.fail("users.info", "fatal_error", times=2)
    assert (await slack.command("help", "UBOB")).startswith("prepbot")
    assert (await slack.command("setup 07:15 UTC", LISTED_ORGANIZER)).startswith("Done.")


async def test_bad_setup_input_is_explained_and_changes_nothing(slack: Slack) -> None:
    reply = await slack.command("setup 25:99 Mars/Olympus_Mons")
    assert reply.startswith("Nothing was changed.") and "25:99" in reply and "Mars/Olympus_Mons" in reply
    assert (await slack.command("schedule", "UBOB")).startswith("This channel has no practice schedule yet.")


async def test_an_unknown_slash_command_gets_a_clear_answer(slack: Slack) -> None:
    answer = await slack.client.command(slack.payloads.command("/prepare", "stats", "UBOB", CHANNEL))
    assert answer.status == 200 and "/prep and /drill" in answer.text
