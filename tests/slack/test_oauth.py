"""Multi-workspace installs: the OAuth install and redirect routes, installations kept in prepbot's database."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.slack.oauth import SqlInstallationStore
from bot import models
from tests.conftest import FakeClock
from tests.fakes.slack import FakeSlack
from tests.slack.conftest import ADMIN, CHANNEL, Running, Slack, slack_settings, start_adapter

STATE_SECRET = "a-long-random-state-secret-for-tests"


@pytest.fixture
async def hosted(fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> AsyncIterator[Running]:
    settings = slack_settings(fake_slack, slack_bot_token=None, slack_client_id=fake_slack.client_id,
                              slack_client_secret=fake_slack.client_secret, slack_state_secret=STATE_SECRET)
    running = await start_adapter(settings, sessions, clock)
    yield running
    await running.stop()


class Browser:
    """A browser's side of the install: it keeps the state cookie bolt sets (Secure, so sent by hand over http)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.cookies: dict[str, str] = {}

    async def get(self, url: str, **params: str) -> tuple[int, str]:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        async with self.session.get(url, params=params, headers={"Cookie": cookie} if cookie else {}) as response:
            self.cookies |= {name: morsel.value for name, morsel in response.cookies.items()}
            return response.status, await response.text()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield Browser(session)


async def start_install(browser: Browser, running: Running) -> dict[str, list[str]]:
    status, page = await browser.get(f"{running.url}/slack/install")
    assert status == 200
    link = html.unescape(re.search(r'<a href="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    return parse_qs(urlsplit(link).query) | {"_url": [link]}


async def installations(sessions: async_sessionmaker[AsyncSession]) -> list[models.Installation]:
    async with sessions() as session:
        return list((await session.scalars(select(models.Installation))).all())


async def test_installing_into_a_second_workspace_stores_it_and_serves_it(
    hosted: Running, browser: Browser, fake_slack: FakeSlack,
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    query = await start_install(browser, hosted)
    assert query["_url"][0].startswith(f"{fake_slack.base_url}/oauth/v2/authorize"), "SLACK_API_URL's host, as on GovSlack"
    assert query["client_id"] == [fake_slack.client_id]
    assert "chat:write" in query["scope"][0].split(",")

    workspace = fake_slack.add_install_code("code-42", "T0002")
    status, _ = await browser.get(f"{hosted.url}/slack/oauth_redirect", code="code-42", state=query["state"][0])
    assert status == 200
    [installed] = await installations(sessions)
    assert (installed.workspace_external_id, installed.bot_token, installed.bot_user_id, installed.bot_id) == (
        "T0002", workspace.bot_token, workspace.bot_user_id, workspace.bot_id)
    [exchange] = fake_slack.calls_to("oauth.v2.access")
    assert exchange.args["code"] == "code-42"

    team = Slack(fake_slack, hosted, sessions, clock)
    team.payloads.team_id, team.payloads.bot_user_id = "T0002", workspace.bot_user_id
    try:
        await team.setup()
        prompt_ts = await team.post_prompt()
        assert {c.token for c in fake_slack.calls_to("chat.postMessage")} == {workspace.bot_token}
        assert {c.token for c in fake_slack.calls_to("users.info")} == {workspace.bot_token}
        reply = await team.answer(prompt_ts, "UALICE")
        assert await team.answers() == {reply["ts"]: reply["text"]}
        assert len(fake_slack.calls_to("auth.test")) == 1, "auth.test once, at install, never per event"
    finally:
        await team.close()


async def test_a_redirect_with_a_forged_state_installs_nothing(hosted: Running, browser: Browser,
                                                               fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession]) -> None:
    await start_install(browser, hosted)
    fake_slack.add_install_code("code-7", "T0003")
    status, _ = await browser.get(f"{hosted.url}/slack/oauth_redirect", code="code-7", state="forged")
    assert status >= 400
    assert await installations(sessions) == []
    assert fake_slack.calls_to("oauth.v2.access") == []


async def test_an_install_state_is_used_only_once(hosted: Running, browser: Browser,
                                                   fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession]) -> None:
    state = (await start_install(browser, hosted))["state"][0]
    fake_slack.add_install_code("code-1", "T0004")
    fake_slack.add_install_code("code-2", "T0005")
    assert (await browser.get(f"{hosted.url}/slack/oauth_redirect", code="code-1", state=state))[0] == 200
    assert (await browser.get(f"{hosted.url}/slack/oauth_redirect", code="code-2", state=state))[0] >= 400
    assert [i.workspace_external_id for i in await installations(sessions)] == ["T0004"]


async def test_events_from_a_workspace_that_never_installed_change_nothing(
    hosted: Running, fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    stranger = Slack(fake_slack, hosted, sessions, clock)
    stranger.payloads.team_id = "T0999"
    try:
        answer = await stranger.client.command(stranger.payloads.command("/prep", "setup 09:00 UTC", ADMIN, CHANNEL))
        assert answer.status < 500
        await hosted.adapter.drain()
        assert "Please reinstall this app" in fake_slack.responses[-1]["text"]
        assert fake_slack.calls_to("users.info") == []
        async with sessions() as session:
            assert (await session.scalars(select(models.Channel))).all() == []
    finally:
        await stranger.close()


async def test_a_workspace_that_uninstalls_the_app_is_forgotten(
    hosted: Running, browser: Browser, fake_slack: FakeSlack,
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    state = (await start_install(browser, hosted))["state"][0]
    workspace = fake_slack.add_install_code("code-9", "T0009")
    assert (await browser.get(f"{hosted.url}/slack/oauth_redirect", code="code-9", state=state))[0] == 200
    team = Slack(fake_slack, hosted, sessions, clock)
    team.payloads.team_id, team.payloads.bot_user_id = "T0009", workspace.bot_user_id
    try:
        await team.setup()
        uninstalled = {"type": "app_uninstalled", "event_ts": team.payloads.ts()}
        assert (await team.event(uninstalled)).status == 200
        assert await installations(sessions) == []
        answer = await team.client.command(team.payloads.command("/prep", "help", "UBOB", CHANNEL))
        assert answer.status < 500
        await hosted.adapter.drain()
        assert "Please reinstall this app" in fake_slack.responses[-1]["text"]
        assert len(fake_slack.responses) == 2 and fake_slack.calls_to("users.info")[-1].args["user"] == "UADMIN"
    finally:
        await team.close()


async def test_installations_are_loaded_at_start_and_looked_up_again_in_the_background_once_due(
    fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    workspace = fake_slack.add_install_code("code-7", "T0007")
    fake_slack.workspaces[workspace.bot_token] = workspace
    await SqlInstallationStore(sessions).async_save(Installation(
        app_id=fake_slack.app_id, team_id="T0007", bot_token=workspace.bot_token, bot_id=workspace.bot_id,
        bot_user_id=workspace.bot_user_id, bot_scopes="chat:write,commands", user_id="UINSTALLER"))
    settings = slack_settings(fake_slack, slack_bot_token=None, slack_client_id=fake_slack.client_id,
                              slack_client_secret=fake_slack.client_secret, slack_state_secret=STATE_SECRET)
    running = await start_adapter(settings, sessions, clock)
    team = Slack(fake_slack, running, sessions, clock)
    team.payloads.team_id, team.payloads.bot_user_id = "T0007", workspace.bot_user_id
    try:
        # Another process removes the install; this one loaded it at start and serves it from memory.
        async with sessions() as session, session.begin():
            await session.execute(delete(models.Installation))
        assert "/prep" in await team.command("help", user="UBOB")
        # Once the cached entry is due, it is still served (no lookup before the ack) and looked up again after.
        running.adapter._authorized = {key: (0.0, result) for key, (_, result) in running.adapter._authorized.items()}
        assert "/prep" in await team.command("help", user="UBOB")
        answer = await team.client.command(team.payloads.command("/prep", "help", "UBOB", CHANNEL, key="after"))
        assert answer.status < 500
        await running.adapter.drain()
        assert "Please reinstall this app" in fake_slack.responses[-1]["text"]
    finally:
        await team.close()
        await running.stop()
