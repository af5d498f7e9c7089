"""`/prep` commands: parsing, permission checks and the organizer's schedule changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import models, progress, views
from bot.events import CommandInvoked
from bot.messages import Message
from bot.schedule import MON_FRI, ScheduleError, clip, next_due, parse_time, parse_weekdays, parse_zone
from bot.store import find_channel, find_prompt, insert_ignoring_conflicts, latest_prompt, member_id, workspace_id

MAX_COMMAND_CHARS = 500
ORGANIZER_COMMANDS = frozenset({"setup", "pause", "resume", "skip", "now", "track"})
MEMBER_COMMANDS = frozenset({"help", "stats", "leaderboard", "rubric", "schedule"})
# Organizer commands that act on the schedule's next date and take no arguments: extra words (e.g.
# "/prep skip friday") would otherwise be ignored while the command does something else.
NO_ARGUMENTS = frozenset({"pause", "resume", "skip", "now"})
PERIODS = {"week": timedelta(days=7), "month": timedelta(days=30), "all": None}


@dataclass(frozen=True, slots=True)
class PostNow:
    """`/prep now` was accepted: the caller posts today's prompt and reports how it went."""

    channel_id: int


@dataclass(frozen=True, slots=True)
class Context:
    session: AsyncSession
    event: CommandInvoked
    now: datetime
    is_organizer: bool
    default_track: str


Result = Message | PostNow
Handler = Callable[[Context, list[str]], Awaitable[Result]]


async def run(context: Context) -> Result:
    text = context.event.text
    if len(text) > MAX_COMMAND_CHARS:
        return Message.text(f"That command is {len(text)} characters long; /prep commands are at most {MAX_COMMAND_CHARS}.")
    words = text.split()
    name = words[0].lower() if words else "help"
    if name not in ORGANIZER_COMMANDS | MEMBER_COMMANDS:
        return Message.text(f"`{clip(words[0])}` is not a /prep command. Try /prep help for the list.")
    if name in ORGANIZER_COMMANDS and not context.is_organizer:
        return Message.text(
            f"Only organizers can run /prep {name}: workspace admins and owners on Slack, members with "
            "Manage Server on Discord, or users listed in PREP_ORGANIZERS. Nothing was changed.")
    if name in NO_ARGUMENTS and len(words) > 1:
        return Message.text(f"/prep {name} takes no arguments (got `{clip(' '.join(words[1:]))}`). Nothing was changed.")
    return await HANDLERS[name](context, words[1:])


async def _help(context: Context, args: list[str]) -> Result:
    return views.HELP


async def _setup(context: Context, args: list[str]) -> Result:
    usage = "Usage: /prep setup <HH:MM> <Area/City> [mon-fri|daily|mon,wed,fri] [track], e.g. /prep setup 09:30 Europe/Berlin mon-fri"
    if len(args) < 2 or len(args) > 4:
        return Message.text(f"/prep setup takes a time, a time zone, and optionally days and a track. {usage}")
    problems: list[str] = []
    post_time = zone = None
    weekdays = MON_FRI
    try:
        post_time = parse_time(args[0])
    except ScheduleError as error:
        problems.append(str(error))
    try:
        zone = parse_zone(args[1])
    except ScheduleError as error:
        problems.append(str(error))
    if len(args) > 2:
        try:
            weekdays = parse_weekdays(args[2])
        except ScheduleError as error:
            problems.append(str(error))
    channel = await find_channel(context.session, context.event.channel)
    track = args[3] if len(args) > 3 else (channel.track if channel else context.default_track)
    if (problem := await _unknown_track(context.session, track)) is not None:
        problems.append(problem)
    if problems or post_time is None or zone is None:
        return Message.text("Nothing was changed. " + " ".join(problems))
    now = context.now
    if channel is None:
        workspace = await context.session.run_sync(workspace_id, context.event.channel.workspace, now)
        await context.session.execute(insert_ignoring_conflicts(
            context.session, models.Channel, workspace_id=workspace, external_id=context.event.channel.id, track=track,
            post_time=post_time, timezone=zone.key, weekdays=weekdays, paused=False, created_at=now, updated_at=now))
        channel = await find_channel(context.session, context.event.channel)
        assert channel is not None
    channel.post_time, channel.timezone, channel.weekdays, channel.track = post_time, zone.key, weekdays, track
    channel.paused, channel.updated_at = False, now
    await context.session.flush()
    return Message.text("Done. " + views.schedule_text(channel, await _next_at(context.session, channel, now)))


async def _with_channel(context: Context) -> models.Channel | Message:
    channel = await find_channel(context.session, context.event.channel)
    if channel is None:
        return Message.text("This channel has no practice schedule yet. An organizer can start one with "
                            "/prep setup <HH:MM> <Area/City>, e.g. /prep setup 09:30 Europe/Berlin.")
    return channel


async def _pause(context: Context, args: list[str]) -> Result:
    return await _set_paused(context, True)


async def _resume(context: Context, args: list[str]) -> Result:
    return await _set_paused(context, False)


async def _set_paused(context: Context, paused: bool) -> Result:
    channel = await _with_channel(context)
    if isinstance(channel, Message):
        return channel
    if channel.paused == paused:
        return Message.text(f"The schedule is already {'paused' if paused else 'running'}. " + views.schedule_text(
            channel, await _next_at(context.session, channel, context.now)))
    channel.paused, channel.updated_at = paused, context.now
    verb = "Paused: no questions go up until /prep resume." if paused else "Resumed."
    return Message.text(f"{verb} " + views.schedule_text(channel, await _next_at(context.session, channel, context.now)))


async def _skip(context: Context, args: list[str]) -> Result:
    channel = await _with_channel(context)
    if isinstance(channel, Message):
        return channel
    upcoming = await _next_slot(context.session, channel, context.now)
    if upcoming is None:
        return Message.text("This channel's schedule has no upcoming date to skip.")
    day, _ = upcoming
    await context.session.execute(insert_ignoring_conflicts(
        context.session, models.Prompt, channel_id=channel.id, local_date=day, status="skipped", question_id=None,
        marker=f"skip-{channel.id}-{day:%Y%m%d}", claim_token="skip", claimed_at=context.now))
    return Message.text(f"Skipped the question of {day:%a %d %b}. " + views.schedule_text(
        channel, await _next_at(context.session, channel, context.now)))


async def _now(context: Context, args: list[str]) -> Result:
    channel = await _with_channel(context)
    if isinstance(channel, Message):
        return channel
    return PostNow(channel.id)


async def _track(context: Context, args: list[str]) -> Result:
    channel = await _with_channel(context)
    if isinstance(channel, Message):
        return channel
    if len(args) != 1:
        return Message.text(f"Usage: /prep track <name>. {await _track_list(context.session)}")
    if (problem := await _unknown_track(context.session, args[0])) is not None:
        return Message.text("Nothing was changed. " + problem)
    channel.track, channel.updated_at = args[0], context.now
    return Message.text(f"This channel now practises the `{args[0]}` track, from the next question on.")


async def _stats(context: Context, args: list[str]) -> Result:
    channel = await _with_channel(context)
    if isinstance(channel, Message):
        return channel
    member = await context.session.run_sync(member_id, context.event.user, context.now)
    return views.stats_message(context.event.user.id, await progress.member_stats(context.session, channel.id, member))


async def _leaderboard(context: Context, args: list[str]) -> Result:
    period = args[0].lower() if args else "week"
    if len(args) > 1 or period not in PERIODS:
        return Message.text(f"`{clip(' '.join(args))}` is not a period: use /prep leaderboard week, month or all.")
    channel = await _with_channel(context)
    if isinstance(channel, Message):
        return channel
    span = PERIODS[period]
    standings = await progress.leaderboard(context.session, channel.id, context.now - span if span else None)
    return views.leaderboard_message(period, standings, context.event.user.id)


async def _rubric(context: Context, args: list[str]) -> Result:
    channel = await _with_channel(context)
    if isinstance(channel, Message):
        return channel
    prompt = await context.session.run_sync(find_prompt, channel.id, context.event.thread) if context.event.thread else None
    prompt = prompt or await context.session.run_sync(latest_prompt, channel.id)
    if prompt is None or prompt.question_id is None:
        return Message.text("No question has been posted here yet, so there is no rubric to show.")
    question = await context.session.get_one(models.Question, prompt.question_id)
    return views.rubric_message(question, heading=f"Rubric for {prompt.local_date:%a %d %b}'s question")


async def _schedule(context: Context, args: list[str]) -> Result:
    channel = await _with_channel(context)
    if isinstance(channel, Message):
        return channel
    return Message.text(views.schedule_text(channel, await _next_at(context.session, channel, context.now)))


async def _unknown_track(session: AsyncSession, track: str) -> str | None:
    if await session.get(models.Track, track) is not None:
        return None
    return f"`{clip(track)}` is not a question track. {await _track_list(session)}"


async def _track_list(session: AsyncSession) -> str:
    names = (await session.scalars(select(models.Track.id).order_by(models.Track.id))).all()
    return "Available tracks: " + (", ".join(f"`{n}`" for n in names) or "none (check QUESTION_BANK_DIR)") + "."


async def _next_slot(session: AsyncSession, channel: models.Channel, now: datetime) -> tuple[date, datetime] | None:
    """The next scheduled date that nobody has claimed or skipped yet."""
    zone = ZoneInfo(channel.timezone)
    after = None
    for _ in range(60):
        found = next_due(now, channel.post_time, zone, channel.weekdays, after=after)
        if found is None:
            return None
        taken = await session.scalar(select(models.Prompt.id).where(
            models.Prompt.channel_id == channel.id, models.Prompt.local_date == found[0]))
        if taken is None:
            return found
        after = found[0]
    return None


async def _next_at(session: AsyncSession, channel: models.Channel, now: datetime) -> datetime | None:
    found = await _next_slot(session, channel, now)
    return found[1] if found else None


HANDLERS: dict[str, Handler] = {
    "help": _help, "setup": _setup, "pause": _pause, "resume": _resume, "skip": _skip, "now": _now,
    "track": _track, "stats": _stats, "leaderboard": _leaderboard, "rubric": _rubric, "schedule": _schedule,
}
