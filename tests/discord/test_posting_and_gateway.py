"""Posting with a nonce, reconciling by marker, and the gateway: RECONNECT, RESUME, replays and shards."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta


from adapters.discord import translate
from adapters.discord.pacing import REQUEST_BURST
from bot.actions import PostPrompt
from bot.core import PrepBot
from bot.posting import Outcome
from bot.messages import Header, Message, Text
from bot.refs import ChannelRef, WorkspaceRef
from tests.conftest import FakeClock
from tests.discord.conftest import KEYCAPS, Bot, Launch
from tests.fakes.discord import FakeDiscord

PROMPT = Message.of(Header("Question of the day · Data"), Text("How would you size a review queue?"))


def channel_of(fake: FakeDiscord) -> ChannelRef:
    return ChannelRef(WorkspaceRef("discord", str(fake.guild_id)), str(fake.channel_id))


async def test_a_send_whose_response_was_lost_is_retried_with_the_same_nonce_and_posts_once(bot: Bot) -> None:
    fake = bot.fake
    await bot.setup_channel()
    fake.lose_response("POST", rf"/channels/{fake.channel_id}/messages", status=502)
    prompt = await bot.post_prompt()
    sends = fake.calls_to("POST", rf"/channels/{fake.channel_id}/messages")
    assert [c.status for c in sends] == [502, 200]
    assert sends[0].body["nonce"] == sends[1].body["nonce"] and sends[1].body["enforce_nonce"] is True
    assert [m["id"] for m in fake.bot_posts()] == [prompt["id"]]


async def test_posting_the_same_prompt_twice_within_minutes_returns_the_first_message(bot: Bot) -> None:
    action = PostPrompt(channel_of(bot.fake), PROMPT, "pb0123456789abcdef01")
    first = await bot.adapter.port.perform(action)
    second = await bot.adapter.port.perform(action)
    assert first == second
    assert len(bot.fake.bot_posts()) == 1


async def test_a_prompt_whose_outcome_is_unknown_is_found_by_its_marker_and_gets_its_thread(bot: Bot) -> None:
    fake = bot.fake
    since = datetime.now(UTC) - timedelta(minutes=1)
    marker = "pbfeedfacefeedface00"
    # The send landed but the process died before opening the thread. REST history omits the
    # nonce, so the marker in the embed's footer is what finds the message again.
    posted = await fake.post(fake.bot, fake.channel_id, "", embeds=[dict(translate.render(PROMPT, marker=marker).to_dict())])
    assert fake.thread(int(posted["id"])) is None
    found = await bot.adapter.port.find_prompt(channel_of(fake), marker, since)
    assert found is not None and found.id == posted["id"]
    assert fake.thread(int(posted["id"])) is not None
    assert await bot.adapter.port.find_prompt(channel_of(fake), "pbnotpostedanywhere0", since) is None
    assert len(fake.bot_posts()) == 1


async def test_starting_a_thread_that_already_exists_is_not_an_error(bot: Bot) -> None:
    fake = bot.fake
    fake.lose_response("POST", r"/channels/\d+/messages/\d+/threads", status=500)
    ref = await bot.adapter.port.perform(PostPrompt(channel_of(fake), PROMPT, "pbabcdefabcdefabcd01"))
    assert ref is not None and fake.thread(int(ref.id)) is not None
    assert [c.status for c in fake.calls_to("POST", r"/channels/\d+/messages/\d+/threads")] == [500, 400]


async def test_a_rate_limited_send_waits_for_retry_after_and_posts_once(bot: Bot) -> None:
    fake = bot.fake
    await bot.setup_channel()
    fake.rate_limit("POST", rf"/channels/{fake.channel_id}/messages", retry_after=0.3)
    await bot.post_prompt()
    sends = fake.calls_to("POST", rf"/channels/{fake.channel_id}/messages")
    assert [c.status for c in sends] == [429, 200]
    assert sends[1].at - sends[0].at >= 0.3
    assert len(fake.bot_posts()) == 1


async def test_a_reconnect_in_the_middle_of_the_loop_resumes_and_loses_no_event(bot: Bot) -> None:
    fake = bot.fake
    await bot.setup_channel()
    thread = int((await bot.post_prompt())["id"])
    alice = await bot.answer(fake.alice, thread, "Before the reconnect.")
    session = fake.live
    assert session is not None
    await fake.reconnect()
    await fake.wait_for(lambda: session.socket is None, what="the client to close the socket")
    # Sent while the client is away: the session keeps them and RESUME replays them.
    bob = await fake.post(fake.bob, thread, "During the reconnect.")
    await fake.react(fake.bob, thread, int(alice["id"]), KEYCAPS[5])
    await fake.wait_for(lambda: fake.resumes, what="RESUME")
    await bot.wait_for_answer(int(bob["id"]))
    await bot.settle()
    assert await bot.ratings(alice["id"]) == {fake.bob.id: 5}
    assert len(fake.identifies) == 1 and fake.resumes[0]["session_id"] == session.id
    assert "Answers given: 1" in await bot.command(fake.bob, "stats")


async def test_events_replayed_again_after_a_resume_change_nothing(bot: Bot) -> None:
    fake = bot.fake
    await bot.setup_channel()
    thread = int((await bot.post_prompt())["id"])
    alice = await bot.answer(fake.alice, thread, "An answer.")
    message = int(alice["id"])
    await fake.react(fake.bob, thread, message, KEYCAPS[4])
    await fake.react(fake.bob, thread, message, KEYCAPS[5])
    await fake.unreact(fake.bob, thread, message, KEYCAPS[5])
    await bot.settle()
    assert await bot.ratings(message) == {fake.bob.id: 4}

    fake.replay_overlap = 6  # Discord delivers the last few events a second time
    await fake.drop_connection()
    await fake.wait_for(lambda: fake.resumes, what="RESUME")
    await bot.settle()
    assert await bot.ratings(message) == {fake.bob.id: 4}

    # A lone duplicate of "add 5", arriving after its removal, must not bring the 5 back.
    add_five = [p for p in fake.sent("MESSAGE_REACTION_ADD", message_id=str(message)) if p["d"]["emoji"]["name"] == KEYCAPS[5]]
    await fake.redeliver(*add_five, *fake.sent("MESSAGE_CREATE", id=alice["id"]))
    await bot.settle()
    assert await bot.ratings(message) == {fake.bob.id: 4}
    assert "Answers given: 1" in await bot.command(fake.alice, "stats")


async def test_sharded_the_client_identifies_every_shard_and_serves_the_guild_on_its_own(fake: FakeDiscord, launch: Launch) -> None:
    bot = await launch(discord_shard_count=2)
    await fake.wait_for(lambda: len(fake.identifies) == 2, what="both shards to identify")
    assert sorted(tuple(i["shard"]) for i in fake.identifies) == [(0, 2), (1, 2)]
    await bot.setup_channel()
    thread = int((await bot.post_prompt())["id"])
    await bot.answer(fake.alice, thread, "Answered on a sharded bot.")


async def test_a_bot_that_discord_requires_to_shard_switches_to_the_recommended_shard_count(fake: FakeDiscord, launch: Launch) -> None:
    fake.recommended_shards = 2
    bot = await launch()
    await fake.wait_for(lambda: len(fake.identifies) == 3, what="the refused identify, then one per shard")
    assert "shard" not in fake.identifies[0] and fake.close_codes == [4011]
    assert sorted(tuple(i["shard"]) for i in fake.identifies[1:]) == [(0, 2), (1, 2)]
    await bot.setup_channel()


async def test_a_development_guild_gets_the_commands_at_once_instead_of_a_global_sync(fake: FakeDiscord, launch: Launch) -> None:
    bot = await launch(discord_dev_guild=str(fake.guild_id))
    assert {c["name"] for c in fake.guild_commands[fake.guild_id]} == {"prep", "drill"}
    assert fake.calls_to("PUT", rf"/applications/{fake.application_id}/commands") == []
    await bot.setup_channel()


def test_the_marker_is_in_the_footer_and_the_nonce_fits_discords_limit() -> None:
    marker = "pb" + "0" * 18
    embed = translate.render(PROMPT, marker=marker)
    assert embed.footer.text is not None and embed.footer.text.endswith(f"prepbot:{marker}")
    assert len(translate.nonce_for(marker)) <= 25


async def test_behind_a_rest_proxy_the_gateway_url_is_asked_of_the_proxy(fake: FakeDiscord, launch: Launch) -> None:
    bot = await launch(discord_gateway_url=None)
    assert fake.calls_to("GET", "/gateway/bot")
    await bot.setup_channel()


async def test_a_post_whose_response_never_came_is_reconciled_by_the_next_tick_not_posted_twice(bot: Bot) -> None:
    fake = bot.fake
    clock = FakeClock(datetime.now(UTC))
    core = PrepBot(bot.sessions, bot.adapter.port, default_track="mini", clock=clock)
    due = (clock.now - timedelta(minutes=1)).strftime("%H:%M")
    assert (await bot.command(fake.organizer, "setup", time=due, timezone="UTC", days="daily")).startswith("Done.")

    # The message is created, but the answer Discord sends back is an error: the outcome is unknown.
    fake.lose_response("POST", rf"/channels/{fake.channel_id}/messages", status=400)
    assert [r.outcome for r in await core.tick()] == [Outcome.FAILED]
    assert [r.outcome for r in await core.tick()] == [Outcome.IN_FLIGHT]  # nobody resends while the claim is fresh
    clock.advance(seconds=60)  # the claim goes stale: the next tick takes it over and looks for the marker
    [result] = await core.tick()
    assert result.outcome is Outcome.RECONCILED
    assert [m["id"] for m in fake.bot_posts()] == [result.message_id]
    assert fake.thread(int(result.message_id)) is not None  # type: ignore[arg-type]


async def test_many_posts_due_at_once_are_paced_below_discords_request_rate(fake: FakeDiscord, launch: Launch) -> None:
    bot = await launch(requests_per_second=20)
    actions = [PostPrompt(channel_of(fake), PROMPT, f"pbpaced{n:013d}") for n in range(6)]
    await asyncio.gather(*(bot.adapter.port.perform(action) for action in actions))
    paced = sorted(c.at for c in fake.calls if c.method == "POST" and c.path.startswith(f"/channels/{fake.channel_id}/"))
    assert len(paced) == 12  # a message and a thread for each
    # Past the bucket's burst, the i-th request starts no sooner than a token later each (give or take transit).
    late = [(n, at - paced[0]) for n, at in enumerate(paced) if at - paced[0] < (n - REQUEST_BURST + 1) / 20 - 0.02]
    assert late == [], late


async def test_looking_for_prompts_after_a_crash_waits_its_turn_like_posting(fake: FakeDiscord, launch: Launch) -> None:
    bot = await launch(requests_per_second=20)
    since = datetime.now(UTC) - timedelta(minutes=1)
    markers = [f"pblost{n:014d}" for n in range(8)]
    assert await asyncio.gather(*(bot.adapter.port.find_prompt(channel_of(fake), m, since) for m in markers)) == [None] * 8
    lookups = sorted(c.at for c in fake.calls_to("GET", rf"/channels/{fake.channel_id}/messages"))
    assert len(lookups) == 8
    late = [(n, at - lookups[0]) for n, at in enumerate(lookups) if at - lookups[0] < (n - REQUEST_BURST + 1) / 20 - 0.02]
    assert late == [], late
