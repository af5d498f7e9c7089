"""Every message the core sends, described once in platform-neutral blocks."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot import models, progress
from bot.messages import Bullets, Context, Divider, Fields, Header, Message, Text, mention
from bot.schedule import format_weekdays
from bot.store import latest_prompt

RATING_HINT = "Reply in this thread to answer · rate answers with 1️⃣–5️⃣ · ask for a follow-up with /drill"
DIFFICULTY = {1: "warm-up", 2: "core", 3: "stretch"}


def category_name(session: Session, track_id: str, category_id: str) -> str:
    track = session.get(models.Track, track_id)
    for category in track.categories if track else []:
        if category["id"] == category_id:
            return str(category["name"])
    return category_id


def prompt_message(session: Session, prompt: models.Prompt) -> Message:
    """The day's question, with a recap of the channel's previous prompt when there is one."""
    question = session.get_one(models.Question, prompt.question_id)
    category = category_name(session, question.track, question.category)
    blocks: list[Header | Text | Context | Divider | Fields | Bullets] = [
        Header(f"Question of the day · {category}"),
        Text(question.text),
        Context(f"Difficulty: {DIFFICULTY.get(question.difficulty, question.difficulty)} · id `{question.slug}` · {RATING_HINT}"),
    ]
    previous = latest_prompt(session, prompt.channel_id, before=prompt.local_date)
    if previous is not None:
        blocks += [Divider(), Context(recap_text(progress.recap(session, previous.id), previous.local_date.strftime("%a %d %b")))]
    return Message(tuple(blocks))


def recap_text(recap: progress.Recap, day: str) -> str:
    if recap.answers == 0:
        return f"Recap of {day}: no answers yet — it is never too late to reply in that thread."
    people = "member" if recap.members == 1 else "members"
    answers = "answer" if recap.answers == 1 else "answers"
    text = f"Recap of {day}: {recap.answers} {answers} from {recap.members} {people}."
    if recap.top_author is not None and recap.top_average is not None:
        ratings = "rating" if recap.top_ratings == 1 else "ratings"
        text += f" Top-rated: {mention(recap.top_author)} ({recap.top_average:.1f} from {recap.top_ratings} {ratings})."
    return text


def rubric_message(question: models.Question, *, heading: str) -> Message:
    rubric = question.rubric
    return Message.of(
        Header(heading),
        Text(question.text),
        Text("A strong answer covers:"),
        Bullets(tuple(rubric.get("covers", ()))),
        Text("Common pitfalls:"),
        Bullets(tuple(rubric.get("pitfalls", ()))),
    )


def drill_message(user_id: str, question: models.Question, step: int, text: str, *, in_thread: bool) -> Message:
    follow_ups = len(question.follow_ups)
    if step < follow_ups:
        label = f"Follow-up {step + 1} of {follow_ups}"
    else:
        label = "Going further (a general probe for this category)"
    blocks: list[Header | Text | Context] = [Text(f"{mention(user_id)} {label}: {text}")]
    if not in_thread:
        blocks.insert(0, Context(f"On `{question.slug}`: {question.text}"))
    blocks.append(Context("Answer in the thread, then /drill again for the next probe."))
    return Message(tuple(blocks))


def practice_message(question: models.Question, category: str) -> Message:
    return Message.of(
        Header(f"Practice question · {category}"),
        Text(question.text),
        Context(f"id `{question.slug}` · drill on it with /drill {question.slug}"),
    )


def stats_message(user_id: str, stats: progress.Stats) -> Message:
    average = f"{stats.average_received:.2f}" if stats.average_received is not None else "—"
    return Message.of(
        Header("Your practice so far"),
        Text(f"Stats for {mention(user_id)} in this channel."),
        Fields((
            ("Answers given", str(stats.answers)),
            ("Ratings received", f"{stats.ratings_received} (average {average})"),
            ("Ratings given", str(stats.ratings_given)),
            ("Current streak", _streak(stats.streak)),
            ("Best streak", _streak(stats.best_streak)),
            ("Drills taken", str(stats.drills)),
        )),
        Context(f"{stats.prompts} question{'s' if stats.prompts != 1 else ''} posted in this channel so far."),
    )


def _streak(n: int) -> str:
    return f"{n} question{'s' if n != 1 else ''} in a row"


PERIOD_TITLES = {"week": "this week", "month": "this month", "all": "all time"}


def leaderboard_message(period: str, standings: list[progress.Standing], user_id: str, limit: int = 10) -> Message:
    title = Header(f"Leaderboard · {PERIOD_TITLES[period]}")
    if not standings:
        return Message.of(title, Text("No rated answers yet. Answer today's question and rate each other with 1️⃣–5️⃣."))
    lines = [
        f"{rank}. {mention(s.member_external_id)} — {s.score:.2f} (avg {s.average:.2f} from {s.ratings} rating{'s' if s.ratings != 1 else ''}, {s.answers} answer{'s' if s.answers != 1 else ''})"
        for rank, s in enumerate(standings[:limit], 1)
    ]
    blocks: list[Header | Text | Context] = [title, Text("\n".join(lines))]
    mine = next((rank for rank, s in enumerate(standings, 1) if s.member_external_id == user_id), None)
    if mine is not None and mine > limit:
        blocks.append(Text(f"You are #{mine} of {len(standings)}."))
    blocks.append(Context("Ranked by a Bayesian average: a few high ratings count less than many good ones."))
    return Message(tuple(blocks))


def schedule_text(channel: models.Channel, next_at: datetime | None) -> str:
    state = " (paused)" if channel.paused else ""
    text = (f"Schedule{state}: {channel.post_time:%H:%M} {channel.timezone}, {format_weekdays(channel.weekdays)}, "
            f"track `{channel.track}`.")
    if next_at is not None and not channel.paused:
        local = next_at.astimezone(ZoneInfo(channel.timezone))
        text += f" Next question: {local:%a %d %b at %H:%M} ({next_at:%H:%M} UTC)."
    return text


HELP = Message.of(
    Header("prepbot: daily interview practice"),
    Text("Every scheduled day a question goes up in this channel. Answer in its thread, rate other "
         "members' answers with 1️⃣–5️⃣, and ask for follow-ups the way a real interviewer drills down."),
    Bullets((
        "/drill [category or question id] — in a question's thread: your next follow-up; elsewhere: a practice question",
        "/prep stats — your answers, ratings and streak",
        "/prep leaderboard [week|month|all] — who gives the strongest answers",
        "/prep rubric — what a strong answer to the latest question covers",
        "/prep schedule — when the next question goes up",
        "/prep help — this message",
    )),
    Text("Organizers:"),
    Bullets((
        "/prep setup <HH:MM> <Area/City> [mon-fri|daily|mon,wed,fri] [track] — schedule daily questions here",
        "/prep pause · /prep resume — stop and restart the schedule",
        "/prep skip — skip the next scheduled question",
        "/prep now — post today's question now",
        "/prep track <name> — switch the question track",
    )),
)
