"""One `prepbot run` process serving Slack and Discord together, each against its fake, on one database."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.common import BotProcess, free_port
from tests.conftest import FIXTURE_BANK
from tests.discord.conftest import KEYCAPS
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack, wait_until
from tests.slack.conftest import ADMIN, CHANNEL, fake_slack  # noqa: F401 (the fixture)
from tests.slack.payloads import SIGNING_SECRET, Payloads, SignedClient, reply_showing


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


async def test_slack_and_discord_run_side_by_side_in_one_process(
    fake_slack: FakeSlack, fake_discord: FakeDiscord, tmp_path: Path,
) -> None:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "PREP_"))} | {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'prepbot.db'}",
        "SLACK_BOT_TOKEN": fake_slack.bot_token, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake_slack.api_url,
        "DISCORD_TOKEN": fake_discord.token, "DISCORD_API_URL": fake_discord.api_url,
        "DISCORD_GATEWAY_URL": fake_discord.gateway_url, "DISCORD_MESSAGE_CONTENT": "true",
        "HOST": "127.0.0.1", "PORT": str(port), "QUESTION_BANK_DIR": str(FIXTURE_BANK),
        "PREP_DEFAULT_TRACK": "mini", "PREP_TICK_SECONDS": "0.2", "LOG_LEVEL": "INFO",
    }
    log = tmp_path / "prepbot.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=environment, cwd=tmp_path,
            stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink)
    bot = BotProcess(process, port, log)
    client = SignedClient(bot.url)
    try:
        await bot.wait_healthy()
        await fake_discord.wait_for(lambda: fake_discord.live is not None, timeout=30, what="the Discord client to identify")
        due = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%H:%M")

        # Both platforms schedule their channel; the one scheduler posts to each.
        payloads = Payloads(fake_slack.team_id, fake_slack.bot_user_id, fake_slack.response_url())
        assert (await client.command(payloads.command("/prep", f"setup {due} UTC daily", ADMIN, CHANNEL, key="setup"))).status == 200
        setup = await fake_discord.answered(await fake_discord.invoke(
            fake_discord.organizer, "prep", "setup", options={"time": due, "timezone": "UTC", "days": "daily"}), timeout=20)
        assert setup.reply_text().startswith("Done.")
        await wait_until(lambda: fake_slack.posts(CHANNEL, top_level=True), 20, "the question on Slack")
        discord_prompts = await fake_discord.wait_for(
            lambda: [m for m in fake_discord.bot_posts() if m.get("thread")], timeout=20, what="the question on Discord")
        # Answer once prepbot has recorded both posts, as members reading the questions would: a
        # reply in the moment between a platform's answer and that record is not in a known thread.
        await wait_until(lambda: log.read_text().count("posted prompt") == 2, 20, "both posts to be recorded")

        # An answer and a rating on each platform land in the same database, each in its own channel.
        slack_prompt = fake_slack.posts(CHANNEL, top_level=True)[0]
        alice = payloads.reply(CHANNEL, slack_prompt["ts"], "UALICE", "Slack answer.")
        assert (await client.event(payloads.envelope(alice))).status == 200
        assert (await client.event(payloads.envelope(
            payloads.reaction("reaction_added", "UBOB", "five", CHANNEL, alice["ts"], "UALICE")))).status == 200
        thread = int(discord_prompts[0]["id"])
        answer = await fake_discord.post(fake_discord.alice, thread, "Discord answer.")
        await fake_discord.react(fake_discord.bob, thread, int(answer["id"]), KEYCAPS[3])

        slack_board = await reply_showing(
            client, fake_slack, lambda key: payloads.command("/prep", "leaderboard all", "UCAROL", CHANNEL, key=key),
            "avg 5.00 from 1 rating")
        assert "<@UALICE>" in slack_board

        deadline = asyncio.get_running_loop().time() + 20
        while True:
            discord_board = (await fake_discord.answered(await fake_discord.invoke(
                fake_discord.bob, "prep", "leaderboard", options={"period": "all"}), timeout=20)).reply_text()
            if "avg 3.00 from 1 rating" in discord_board:
                break
            assert asyncio.get_running_loop().time() < deadline, discord_board
        assert f"<@{fake_discord.alice.id}>" in discord_board and "UALICE" not in discord_board
        assert len(fake_slack.posts(CHANNEL, top_level=True)) == 1
        assert len([m for m in fake_discord.bot_posts() if m.get("thread")]) == 1
    finally:
        await client.close()
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 20)
    text = log.read_text()
    assert process.returncode == 130, text
    assert "Traceback" not in text
    assert fake_slack.bot_token not in text and fake_discord.token not in text and SIGNING_SECRET not in text
