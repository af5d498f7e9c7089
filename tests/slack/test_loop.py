"""The whole loop over HTTP mode: set up, post, answer, rate, drill, stats and leaderboard, against the fake Slack."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.slack.translate import DRILL_CALLBACK_ID, PROMPT_EVENT_TYPE
from tests.conftest import FakeClock
from tests.fakes.slack import FakeSlack
from tests.slack.conftest import ADMIN, CHANNEL, Slack, slack_settings, start_adapter


async def test_a_day_of_practice_runs_end_to_end_over_http(slack: Slack) -> None:
    fake = slack.fake
    await slack.setup("09:00 UTC daily")
    prompt_ts = await slack.post_prompt()

    prompt = fake.posts(CHANNEL, top_level=True)[-1]
    assert prompt["metadata"]["event_type"] == PROMPT_EVENT_TYPE
    assert prompt["metadata"]["event_payload"]["marker"].startswith("pb")
    assert prompt["text"], "a plain-text fallback goes with the blocks"
    assert prompt["blocks"] and prompt["blocks"][0]["type"] == "header"

    alice = await slack.answer(prompt_ts, "UALICE", "I would start from the queue's SLA and work back.")
    bob = await slack.answer(prompt_ts, "UBOB", "Staff to the ninetieth percentile of volume.")
    rubric_notes = [e for e in fake.ephemerals if e["user"] == "UALICE"]
    assert len(rubric_notes) == 1 and "rubric" in rubric_notes[0]["text"].lower()
    assert rubric_notes[0]["thread_ts"] == prompt_ts, "the note shows in the thread that was answered"

    await slack.react("UBOB", "five", alice)
    await slack.react("UCAROL", "four::skin-tone-3", alice)
    await slack.react("UALICE", "three", bob)
    assert await slack.ratings() == {(alice["ts"], "UBOB"): 5, (alice["ts"], "UCAROL"): 4, (bob["ts"], "UALICE"): 3}

    mention = slack.payloads.mention(CHANNEL, "UALICE", f"<@{fake.bot_user_id}> drill", thread_ts=prompt_ts)
    assert (await slack.event(mention)).status == 200
    drills = fake.posts(CHANNEL, thread=prompt_ts)
    assert len(drills) == 1 and "<@UALICE>" in drills[0]["text"] and "follow-up 1" in drills[0]["text"]

    shortcut = slack.payloads.message_shortcut(DRILL_CALLBACK_ID, "UALICE", CHANNEL, alice)
    assert (await slack.client.interaction(shortcut)).status == 200
    await slack.adapter.drain()
    drills = fake.posts(CHANNEL, thread=prompt_ts)
    assert len(drills) == 2 and "follow-up 2" in drills[1]["text"]

    stats = await slack.command("stats", "UALICE")
    assert "Answers given: 1" in stats and "Ratings received: 2 (average 4.50)" in stats
    board = await slack.command("leaderboard all", "UCAROL")
    assert board.index("UALICE") < board.index("UBOB")

    private_drill = await slack.command("", "UBOB", command="/drill")
    assert "follow-up 1" in private_drill
    assert not [p for p in fake.posts(CHANNEL, thread=prompt_ts) if "<@UBOB>" in p["text"]], "a /drill reply stays private"
    assert [c.args["user"] for c in fake.calls_to("users.info")].count(ADMIN) == 1, "organizer rights are looked up once, then cached"


async def test_slack_api_url_may_be_given_without_its_trailing_slash(
    fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], clock: FakeClock,
) -> None:
    running = await start_adapter(slack_settings(fake_slack, slack_api_url=fake_slack.api_url.rstrip("/")), sessions, clock)
    driver = Slack(fake_slack, running, sessions, clock)
    try:
        await driver.setup()
        await driver.post_prompt()
        assert [c.method for c in fake_slack.calls] == ["auth.test", "users.info", "chat.postMessage"]
    finally:
        await driver.close()
        await running.stop()
