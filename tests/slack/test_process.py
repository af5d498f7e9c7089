"""`prepbot run` as its own process, with Slack credentials in its environment, against the fake Slack."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from benchmarks.common import BotProcess, free_port
from tests.conftest import FIXTURE_BANK
from tests.fakes.slack import FakeSlack, wait_until
from tests.slack.conftest import ADMIN, CHANNEL
from tests.slack.payloads import SIGNING_SECRET, Payloads, SignedClient, reply_showing



@pytest.fixture
def environment(fake_slack: FakeSlack, tmp_path: Path) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "PREP_"))}
    return inherited | {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'prepbot.db'}",
        "SLACK_BOT_TOKEN": fake_slack.bot_token, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake_slack.api_url,
        "HOST": "127.0.0.1", "PORT": str(free_port()), "QUESTION_BANK_DIR": str(FIXTURE_BANK),
        "PREP_DEFAULT_TRACK": "mini", "PREP_TICK_SECONDS": "0.2", "LOG_LEVEL": "DEBUG",
    }


async def launch(environment: dict[str, str], tmp_path: Path) -> BotProcess:
    log = tmp_path / "prepbot.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=environment, cwd=tmp_path,
            stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink)
    bot = BotProcess(process, int(environment["PORT"]), log)
    await bot.wait_healthy()
    return bot


@pytest.fixture
async def prepbot(environment: dict[str, str], tmp_path: Path) -> AsyncIterator[BotProcess]:
    bot = await launch(environment, tmp_path)
    yield bot
    await bot.stop()


async def test_prepbot_run_serves_the_whole_loop_over_http(prepbot: BotProcess, fake_slack: FakeSlack) -> None:
    fake = fake_slack
    client = SignedClient(prepbot.url)
    payloads = Payloads(fake.team_id, fake.bot_user_id, fake.response_url())
    try:
        # A schedule that fell due a minute ago: the scheduler's next tick posts it.
        due = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%H:%M")
        answer = await client.command(payloads.command("/prep", f"setup {due} UTC daily", ADMIN, CHANNEL, key="setup"))
        assert answer.status == 200
        await wait_until(lambda: [r for r in fake.responses if r["key"] == "setup"], 10, "the reply to /prep setup")
        assert fake.responses[0]["text"].startswith("Done."), fake.responses[0]
        await wait_until(lambda: fake.posts(CHANNEL, top_level=True), 10, "the scheduler to post the question")
        prompt = fake.posts(CHANNEL, top_level=True)[0]
        assert prompt["metadata"]["event_type"] == "prepbot_prompt"
        # Answer once prepbot has recorded the post, as a member reading the question would: an
        # answer in the milliseconds between Slack's reply and that record is not yet in a known thread.
        await wait_until(lambda: "posted prompt" in prepbot.log.read_text(), 10, "the post to be recorded")

        alice = payloads.reply(CHANNEL, prompt["ts"], "UALICE", "Start from the SLA.")
        assert (await client.event(payloads.envelope(alice))).status == 200
        rating = payloads.reaction("reaction_added", "UBOB", "five", CHANNEL, alice["ts"], "UALICE")
        assert (await client.event(payloads.envelope(rating))).status == 200
        mention = payloads.mention(CHANNEL, "UBOB", f"<@{fake.bot_user_id}> drill", thread_ts=prompt["ts"])
        assert (await client.event(payloads.envelope(mention))).status == 200
        await wait_until(lambda: fake.posts(CHANNEL, thread=prompt["ts"]), 10, "the drill in the thread")
        assert "<@UBOB>" in fake.posts(CHANNEL, thread=prompt["ts"])[0]["text"]

        board = await reply_showing(
            client, fake, lambda key: payloads.command("/prep", "leaderboard all", "UCAROL", CHANNEL, key=key), "from 1 rating")
        assert "<@UALICE>" in board and "from 1 rating" in board
        assert len(fake.posts(CHANNEL, top_level=True)) == 1, "one post for the day, however many ticks ran"
    finally:
        await client.close()
    assert await prepbot.stop() in (0, 130)
    logs = prepbot.log.read_text()
    assert fake.bot_token not in logs and SIGNING_SECRET not in logs, "no token or secret in the logs"


async def test_prepbot_run_uses_socket_mode_when_slack_app_token_is_set(
    environment: dict[str, str], tmp_path: Path, fake_slack: FakeSlack,
) -> None:
    del environment["SLACK_SIGNING_SECRET"]
    environment["SLACK_APP_TOKEN"] = fake_slack.app_token
    bot = await launch(environment, tmp_path)
    try:
        payloads = Payloads(fake_slack.team_id, fake_slack.bot_user_id, fake_slack.response_url())
        envelope = await fake_slack.send_envelope("slash_commands", payloads.command("/prep", "help", "UBOB", CHANNEL, key="help"))
        assert await fake_slack.ack_for(envelope, timeout=10) == {"envelope_id": envelope}
        await wait_until(lambda: fake_slack.responses, 10, "the reply to /prep help")
        assert "/prep" in fake_slack.responses[0]["text"]
        async with aiohttp.ClientSession() as session, session.post(f"{bot.url}/slack/events", data=b"{}") as response:
            assert response.status == 404, "in Socket Mode there is no HTTP events endpoint to forge requests to"
    finally:
        assert await bot.stop() in (0, 130)
    logs = bot.log.read_text()
    assert fake_slack.app_token not in logs and fake_slack.bot_token not in logs
