"""Secrets never reach a log with the Slack and Discord adapters running: tokens, signing, OAuth and state secrets.

Every logger records at DEBUG (aiohttp, slack_sdk, slack_bolt, discord.py and SQLAlchemy's statements
with their parameters included) while each adapter serves a session against its fake platform,
with faults injected so that the retry and error paths log too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import FakeClock
from tests.discord.conftest import KEYCAPS, start_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack
from tests.reliability.test_secrets import leaks, logged, secret_env
from tests.slack.conftest import ADMIN, CHANNEL, MEMBERS, Slack, slack_settings, start_adapter
from tests.slack.payloads import SignedClient
from tests.slack.test_oauth import Browser, start_install

LOGGERS = ("", "aiohttp", "slack_sdk", "slack_bolt", "discord", "adapters", "bot", "sqlalchemy", "aiosqlite", "asyncpg")


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


async def slack_session(driver: Slack) -> None:
    """A day on Slack: set-up, the post, answers, a rating, drills and commands, with Slack failing some calls."""
    await driver.setup("08:00 UTC daily")
    prompt = await driver.post_prompt()
    driver.fake.fail_randomly(0.3, seed=7)
    alice = await driver.answer(prompt, MEMBERS[0])
    await driver.answer(prompt, MEMBERS[1])
    await driver.react(MEMBERS[1], "five", alice)
    await driver.event(driver.payloads.mention(CHANNEL, MEMBERS[0], f"<@{driver.fake.bot_user_id}> drill", thread_ts=prompt))
    for command, text in (("/prep", "stats"), ("/prep", "setup 25:99 Mars/Olympus"), ("/drill", "")):
        await driver.client.command(driver.payloads.command(command, text, ADMIN, CHANNEL))
    await driver.client.event(driver.payloads.envelope(driver.payloads.reply(CHANNEL, prompt, MEMBERS[2], "forged")),
                              signature="v0=" + "0" * 64)
    await driver.adapter.drain()
    assert driver.fake.random_faults is not None and driver.fake.random_faults.drawn, "the error paths ran"


async def test_the_slack_adapter_logs_no_secret_at_debug_level(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, everything_logged: pytest.LogCaptureFixture,
) -> None:
    env = secret_env()
    fake = await FakeSlack(bot_token=env["SLACK_BOT_TOKEN"], app_token=env["SLACK_APP_TOKEN"]).start()
    for user in (ADMIN, *MEMBERS):
        fake.add_user(user, is_admin=user == ADMIN)
    settings = slack_settings(fake, slack_signing_secret=env["SLACK_SIGNING_SECRET"])
    running = await start_adapter(settings, sessions, clock, request_seconds=1, retry_seconds=0.05)
    driver = Slack(fake, running, sessions, clock)
    await driver.client.close()
    driver.client = SignedClient(running.url, secret=env["SLACK_SIGNING_SECRET"])
    try:
        await slack_session(driver)
    finally:
        await driver.close()
        await running.stop()
        await fake.stop()
    assert fake.posts(CHANNEL, top_level=True), "the session really ran"
    assert {"slack_sdk.web.async_base_client", "adapters.slack.port"} & {r.name for r in everything_logged.records}
    assert leaks(logged(everything_logged), [env["SLACK_BOT_TOKEN"], env["SLACK_SIGNING_SECRET"]]) == []


async def test_an_oauth_install_and_the_workspace_it_serves_log_no_secret_at_debug_level(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, everything_logged: pytest.LogCaptureFixture,
) -> None:
    env = secret_env()
    fake = await FakeSlack().start()
    fake.client_secret = env["SLACK_CLIENT_SECRET"]
    for user in (ADMIN, *MEMBERS):
        fake.add_user(user, is_admin=user == ADMIN)
    settings = slack_settings(fake, slack_bot_token=None, slack_client_id=fake.client_id, slack_client_secret=fake.client_secret,
                              slack_signing_secret=env["SLACK_SIGNING_SECRET"], slack_state_secret=env["SLACK_STATE_SECRET"])
    running = await start_adapter(settings, sessions, clock, request_seconds=1, retry_seconds=0.05)
    workspace = fake.add_install_code("code-7", "T0SECRET")
    workspace.bot_token = f"xoxb-installed-{env['SLACK_BOT_TOKEN'][-12:]}"
    installed_token = workspace.bot_token
    driver = Slack(fake, running, sessions, clock)
    await driver.client.close()
    driver.client = SignedClient(running.url, secret=env["SLACK_SIGNING_SECRET"])
    driver.payloads.team_id, driver.payloads.bot_user_id = workspace.team_id, workspace.bot_user_id
    fake.users = {user: {**info, "team_id": workspace.team_id} for user, info in fake.users.items()}
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            browser = Browser(http)
            query = await start_install(browser, running)
            status, _ = await browser.get(f"{running.url}/slack/oauth_redirect", code="code-7", state=query["state"][0])
            assert status == 200
        await slack_session(driver)
    finally:
        await driver.close()
        await running.stop()
        await fake.stop()
    assert {c.token for c in fake.calls_to("chat.postMessage")} == {installed_token}, "the session ran on the installed token"
    values = [installed_token, env["SLACK_CLIENT_SECRET"], env["SLACK_SIGNING_SECRET"], env["SLACK_STATE_SECRET"]]
    assert leaks(logged(everything_logged), values) == []


async def test_the_discord_adapter_logs_no_secret_at_debug_level(
    sessions: async_sessionmaker[AsyncSession], everything_logged: pytest.LogCaptureFixture,
) -> None:
    env = secret_env()
    async with FakeDiscord(token=env["DISCORD_TOKEN"]) as fake:
        bot = await start_bot(fake, sessions, adapter_options={"request_seconds": 1.5, "send_retry_seconds": 0.05})
        try:
            await bot.setup_channel()
            thread = int((await bot.post_prompt())["id"])
            fake.fail_randomly(0.3, seed=7)
            alice = await bot.answer(fake.alice, thread, "An answer.")
            await fake.react(fake.bob, thread, int(alice["id"]), KEYCAPS[5])
            await fake.answered(await fake.invoke(fake.alice, "drill", channel_id=thread), timeout=30)
            await fake.answered(await fake.invoke(fake.alice, "prep", "stats"), timeout=30)
            await fake.answered(await fake.invoke(fake.organizer, "prep", "now"), timeout=30)
            await fake.reconnect()
            await fake.wait_for(lambda: fake.resumes, what="RESUME")
            await bot.settle()
            tokens = [i.token for i in fake.interactions.values()]
        finally:
            await bot.stop()
    assert fake.random_faults is not None and fake.random_faults.drawn, "the error paths ran"
    assert {"discord.http", "discord.gateway"} <= {r.name for r in everything_logged.records}
    text = logged(everything_logged)
    assert leaks(text, [env["DISCORD_TOKEN"]]) == []
    # An interaction's token lets whoever holds it answer as the bot for 15 minutes.
    assert leaks(text, tokens) == []

