"""The pure translation between Slack payloads and the core's vocabulary."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.slack import translate
from bot.actions import PostPrivately, PostPrompt, PostReply
from bot.events import AnswerDeleted, AnswerEdited, AnswerPosted, CommandInvoked, DrillRequested, ReactionAdded
from bot.messages import Bullets, Fields, Header, Message, Text
from bot.refs import ChannelRef, MessageRef, UserRef, WorkspaceRef
from tests.slack.payloads import Payloads

WS = WorkspaceRef("slack", "T1")
CH = ChannelRef(WS, "C1")
BOT = "UBOT"
AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def payloads() -> Payloads:
    return Payloads("T1", BOT, "http://127.0.0.1:1/respond/r", start=1_772_438_400.0)


def test_a_thread_reply_becomes_an_answer_with_its_thread_and_author(payloads: Payloads) -> None:
    reply = payloads.reply("C1", "1.000001", "UALICE", "hello")
    event = translate.event_from_callback(payloads.envelope(reply, "Ev1"), BOT)
    assert event == AnswerPosted("slack:T1:Ev1", translate.timestamp(reply["ts"]), MessageRef(CH, reply["ts"]),
                                 MessageRef(CH, "1.000001"), UserRef(WS, "UALICE"), "hello")


def test_an_edit_carries_thread_and_author_and_a_delete_names_the_deleted_message(payloads: Payloads) -> None:
    reply = payloads.reply("C1", "1.000001", "UALICE", "hello")
    edited = translate.event_from_callback(payloads.envelope(payloads.edited(reply, "hello!")), BOT)
    assert isinstance(edited, AnswerEdited)
    assert (edited.message.id, edited.text, edited.thread, edited.author) == (
        reply["ts"], "hello!", MessageRef(CH, "1.000001"), UserRef(WS, "UALICE"))
    deleted = translate.event_from_callback(payloads.envelope(payloads.deleted(reply)), BOT)
    assert isinstance(deleted, AnswerDeleted) and deleted.message == MessageRef(CH, reply["ts"])


def test_a_bot_reply_is_marked_as_a_bot_and_the_bots_own_reply_is_dropped(payloads: Payloads) -> None:
    other = translate.event_from_callback(payloads.envelope(payloads.bot_reply("C1", "1.000001", "BOTHER", "hi")), BOT)
    assert isinstance(other, AnswerPosted) and other.author_is_bot and other.author.id == "BOTHER"
    own = payloads.reply("C1", "1.000001", BOT, "me")
    assert translate.event_from_callback(payloads.envelope(own), BOT) is None


@pytest.mark.parametrize("missing", ["channel", "ts", "user"])
def test_a_reply_missing_a_field_is_ignored(payloads: Payloads, missing: str) -> None:
    reply = payloads.reply("C1", "1.000001", "UALICE", "hello")
    del reply[missing]
    assert translate.event_from_callback(payloads.envelope(reply), BOT) is None


def test_an_envelope_without_team_or_event_id_is_ignored(payloads: Payloads) -> None:
    envelope = payloads.envelope(payloads.reply("C1", "1.000001", "UALICE", "hello"))
    assert translate.event_from_callback({**envelope, "event_id": None}, BOT) is None
    envelope["event"].pop("team")
    assert translate.event_from_callback({**envelope, "team_id": None}, BOT) is None


@pytest.mark.parametrize(("reaction", "score"), [
    ("one", "one"), ("five", "five"), ("three::skin-tone-2", "three"), ("thumbsup", None), ("six", None), ("", None),
])
def test_rating_names_are_normalised(reaction: str, score: str | None) -> None:
    assert translate.rating_emoji(reaction) == score


def test_a_reaction_on_a_file_is_ignored(payloads: Payloads) -> None:
    event = payloads.reaction("reaction_added", "UBOB", "five", "C1", "1.1")
    event["item"] = {"type": "file", "file": "F1"}
    assert translate.event_from_callback(payloads.envelope(event), BOT) is None
    event["item"] = {"type": "message", "channel": "C1", "ts": "1.1"}
    assert isinstance(translate.event_from_callback(payloads.envelope(event), BOT), ReactionAdded)


def test_a_mention_asking_for_a_drill_carries_its_topic_and_thread(payloads: Payloads) -> None:
    mention = payloads.mention("C1", "UBOB", f"<@{BOT}> drill me on  data  please", thread_ts="1.000001")
    event = translate.event_from_callback(payloads.envelope(mention), BOT)
    assert isinstance(event, DrillRequested)
    assert (event.topic, event.thread) == ("me on data please", MessageRef(CH, "1.000001"))
    chatter = payloads.mention("C1", "UBOB", f"<@{BOT}> thanks!")
    assert translate.event_from_callback(payloads.envelope(chatter), BOT) is None


def test_slash_commands_become_commands_and_drills(payloads: Payloads) -> None:
    prep = translate.command_event(payloads.command("/prep", " stats ", "UBOB", "C1"), AT, user_is_admin=True)
    assert isinstance(prep, CommandInvoked) and (prep.text, prep.user_is_admin, prep.channel) == ("stats", True, CH)
    drill = translate.command_event(payloads.command("/drill", "data", "UBOB", "C1"), AT)
    assert isinstance(drill, DrillRequested) and (drill.topic, drill.thread) == ("data", None)
    assert translate.command_event({**payloads.command("/prep", "", "UBOB", "C1"), "trigger_id": ""}, AT) is None


def test_the_shortcut_on_a_reply_drills_in_its_thread_and_on_a_top_level_message_in_its_own(payloads: Payloads) -> None:
    reply = payloads.reply("C1", "1.000001", "UALICE", "answer")
    on_reply = translate.shortcut_event(payloads.message_shortcut(translate.DRILL_CALLBACK_ID, "UBOB", "C1", reply), AT)
    assert on_reply is not None and on_reply.thread == MessageRef(CH, "1.000001")
    top = payloads.top_level("C1", "UBOT", "question")
    on_top = translate.shortcut_event(payloads.message_shortcut(translate.DRILL_CALLBACK_ID, "UBOB", "C1", top), AT)
    assert on_top is not None and on_top.thread == MessageRef(CH, top["ts"])


def test_a_prompt_is_posted_with_blocks_a_fallback_and_its_marker() -> None:
    message = Message.of(Header("Question"), Text("Why <this> & that, <@UALICE>? See <https://example.org|docs>"))
    arguments = translate.post_arguments(PostPrompt(CH, message, "pb123"))
    assert arguments["metadata"] == {"event_type": translate.PROMPT_EVENT_TYPE, "event_payload": {"marker": "pb123"}}
    assert translate.prompt_marker({"metadata": arguments["metadata"]}) == "pb123"
    assert translate.prompt_marker({"metadata": {"event_type": "someone_else", "event_payload": {"marker": "pb123"}}}) is None
    assert arguments["text"] == "Question\n\nWhy &lt;this&gt; &amp; that, <@UALICE>? See <https://example.org|docs>"
    assert arguments["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "Question", "emoji": True}}
    reply = translate.post_arguments(PostReply(MessageRef(CH, "1.1"), message))
    assert reply["thread_ts"] == "1.1" and "metadata" not in reply
    private = translate.post_arguments(PostPrivately(CH, UserRef(WS, "UBOB"), message))
    assert private["user"] == "UBOB" and "thread_ts" not in private


def test_blocks_stay_within_slacks_limits() -> None:
    message = Message.of(
        Header("h" * 500), Text("t" * 7000), Fields(tuple((f"label {i}", "v" * 3000) for i in range(23))),
        *(Bullets((f"item {i}",)) for i in range(60)),
    )
    blocks = translate.blocks(message)
    assert len(blocks) == translate.MAX_BLOCKS
    assert len(blocks[0]["text"]["text"]) == translate.MAX_HEADER_CHARS
    assert [len(b["text"]["text"]) for b in blocks[1:4]] == [3000, 3000, 1000]
    assert [len(b["fields"]) for b in blocks[4:7]] == [10, 10, 3]
    assert all(len(f["text"]) <= translate.MAX_FIELD_CHARS for b in blocks[4:7] for f in b["fields"])
    assert len(translate.fallback_text(message)) == translate.MAX_FALLBACK_CHARS
