"""Drills: the next follow-up a member has not had, then the category's generic probes."""

from __future__ import annotations

from bot.core import PrepBot
from bot.fake_chat import FakeChat
from bot.refs import MessageRef
from tests.builders import CHANNEL, Session
from tests.conftest import FakeClock


async def started(core: PrepBot, chat: FakeChat, clock: FakeClock) -> Session:
    members = Session(core, chat, clock)
    await members.setup("09:00 UTC daily")
    await members.post_now()
    return members


def prompt_slug(members: Session) -> str:
    text = members.prompt_actions()[-1].message.plain_text()
    return text.split("id `", 1)[1].split("`", 1)[0]


async def test_in_the_thread_each_drill_is_the_members_next_follow_up_then_the_category_probes(
    core: PrepBot, chat: FakeChat, clock: FakeClock,
) -> None:
    members = await started(core, chat, clock)
    slug = prompt_slug(members)
    thread = members.latest_prompt()
    texts = [(await members.drill("alice", thread=thread)).message.plain_text() for _ in range(5)]
    assert [f"{slug} follow-up {n}" in text for n, text in zip((1, 2, 3), texts, strict=False)] == [True] * 3
    assert "Follow-up 1 of 3" in texts[0] and "<@alice>" in texts[0]
    category = slug.split("-")[0]
    assert f"{category} probe 1" in texts[3] and f"{category} probe 2" in texts[4]


async def test_a_drill_in_the_thread_is_public_and_each_member_has_their_own_progress(
    core: PrepBot, chat: FakeChat, clock: FakeClock,
) -> None:
    members = await started(core, chat, clock)
    thread = members.latest_prompt()
    await members.drill("alice", thread=thread)
    bob = await members.drill("bob", thread=thread)
    assert bob.private is False
    assert "Follow-up 1 of 3" in bob.message.plain_text()


async def test_probes_wrap_around_once_they_run_out(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    thread = members.latest_prompt()
    texts = [(await members.drill("alice", thread=thread)).message.plain_text() for _ in range(7)]
    assert "probe 1" in texts[6]


async def test_a_drill_in_the_channel_drills_privately_on_the_latest_question(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    reply = await members.drill("alice")
    assert reply.private is True
    assert f"{prompt_slug(members)} follow-up 1" in reply.message.plain_text()


async def test_a_drill_on_a_question_id_drills_that_question(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    reply = await members.drill("alice", topic="behavior-q2")
    assert "behavior-q2 follow-up 1" in reply.message.plain_text() and reply.private


async def test_a_drill_on_a_category_gives_a_practice_question_from_it(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    for topic in ("data", "Data & Technical", "DATA"):
        text = (await members.drill("alice", topic=topic)).message.plain_text()
        assert "Practice question · Data & Technical" in text and "about data" in text


async def test_an_unknown_topic_is_named_with_the_categories_to_try(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    text = (await members.drill("alice", topic="astrology")).message.plain_text()
    assert "No category or question id matches `astrology`" in text and "`data`" in text


async def test_a_drill_where_nothing_was_posted_gives_a_practice_question(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    elsewhere = Session(core, chat, clock, channel=CHANNEL.__class__(CHANNEL.workspace, "C-QUIET"))
    reply = await elsewhere.drill("alice")
    assert reply.private and "Practice question" in reply.message.plain_text()


async def test_a_drill_in_a_thread_that_is_not_a_prompt_falls_back_to_the_latest_question(
    core: PrepBot, chat: FakeChat, clock: FakeClock,
) -> None:
    members = await started(core, chat, clock)
    reply = await members.drill("alice", thread=MessageRef(CHANNEL, "some-other-thread"))
    assert reply.private and "follow-up 1" in reply.message.plain_text()


async def test_an_over_long_topic_is_refused(core: PrepBot, chat: FakeChat, clock: FakeClock) -> None:
    members = await started(core, chat, clock)
    text = (await members.drill("alice", topic="x" * 5000)).message.plain_text()
    assert "5000 characters" in text
