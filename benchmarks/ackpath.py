"""Benchmark: how fast `prepbot run` acknowledges signed Slack events over loopback HTTP, and that none is lost.

Starts `python -m bot run` in Slack HTTP mode against a fake Slack, on a fresh SQLite file or
PostgreSQL database holding one channel with a posted prompt. Then sends answers and rating
reactions (adds and removes) from many members, signed before timing starts, open-loop at stepped
rates: each request leaves at its scheduled time whether or not earlier ones were answered, and
its latency is counted from that scheduled time. At the end the answers and rating tallies in the
database are compared with the ones the generated events imply.

In the same run, a baseline: the same logical writes through the plain `sqlite3` module, one
transaction per event, WAL, `synchronous=FULL`, as fast as one connection goes. Prints one JSON line.

    python -m benchmarks.ackpath                       # full: 100 … 3000 events/s, 5 s a step
    python -m benchmarks.ackpath --backend postgresql  # DATABASE_URL on the local PostgreSQL
    python -m benchmarks.ackpath --small               # CI: 100 and 250 events/s, 1 s a step
    python -m benchmarks.ackpath --adapter-only bolt   # the Slack adapter alone, over a core that does nothing

`--adapter-only fast|bolt` measures what the HTTP server and the Slack adapter cost by themselves,
with the fast path or with every event through bolt's dispatch: the ceiling the adapter allows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from benchmarks.common import (
    DEFAULT_POSTGRES_URL, bot_environment, cpu_seconds, database, free_port, machine, percentile, running_bot,
)
from bot import db, models
from bot.app import prepare_database
from bot.actions import Reply
from bot.core import PrepBot
from bot.events import CommandInvoked, Event
from bot.fake_chat import FakeChat
from bot.refs import ChannelRef, UserRef, WorkspaceRef
from bot.settings import Settings
from tests.fakes.slack import FakeSlack, sign, wait_until

SIGNING_SECRET = "benchmark-signing-secret-0123456789abcdef"
TEAM = "T0001"
CHANNEL = "C0BENCH"
ORGANIZER = "UORGANIZER"
EMOJI = ("one", "two", "three", "four", "five")
SCORES = {name: score for score, name in enumerate(EMOJI, start=1)}
FULL_RATES = (100, 250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000)
SMALL_RATES = (100, 250)
TARGET_P99_MS = {"sqlite": 75.0, "postgresql": 100.0}
TARGET_RATE = {"sqlite": 2000, "postgresql": 1500}
TARGET_RATIO = 0.7
# Past this a step has overloaded the bot; the faster steps after it would only pile up more.
GIVE_UP_P99_MS = 5000.0
ANSWER_SHARE = 0.1
REMOVE_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class Sent:
    """One Events API delivery, generated before timing starts."""

    kind: str
    event_id: str
    envelope: dict[str, Any]


@dataclass(slots=True)
class Workload:
    """Generates deliveries and keeps what the database should hold once they are all applied.

    Event timestamps rise by a millisecond per event, so the expected rating of a (rater, answer) is
    the score of the most recently added reaction still present, whatever order the bot applies them in.
    """

    prompt_ts: str
    members: list[str]
    rng: random.Random
    clock: float = field(default_factory=lambda: time.time() - 3600)
    answers: dict[str, str] = field(default_factory=dict)  # answer ts -> author
    reactions: dict[tuple[str, str, str], float | None] = field(default_factory=dict)  # (answer, rater, emoji) -> added at
    _present: list[tuple[str, str, str]] = field(default_factory=list)
    _answer_list: list[str] = field(default_factory=list)
    _ids: int = 0

    def _ts(self) -> str:
        self.clock += 0.001
        return f"{self.clock:.6f}"

    def _envelope(self, event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self._ids += 1
        event_id = f"Ev{self._ids:010d}"
        return event_id, {
            "token": "XXYYZZ", "team_id": TEAM, "api_app_id": "APREPBOT", "event": event, "type": "event_callback",
            "event_id": event_id, "event_time": int(float(event["event_ts"])), "is_ext_shared_channel": False,
            "authorizations": [{"enterprise_id": None, "team_id": TEAM, "user_id": "UPREPBOT", "is_bot": True,
                                "is_enterprise_install": False}],
        }

    def events(self, count: int) -> list[Sent]:
        return [self.next() for _ in range(count)]

    def introductions(self) -> list[Sent]:
        """An answer, then one rating reaction from every member on it: everyone has been seen once."""
        first = self._answer()
        keys = [(self._answer_list[-1], member, "three") for member in self.members]
        self._present.extend(keys)
        return [first, *(self._reaction("reaction_added", key) for key in keys)]

    def next(self) -> Sent:
        roll = self.rng.random()
        if not self._answer_list or roll < ANSWER_SHARE:
            return self._answer()
        if self._present and roll < ANSWER_SHARE + REMOVE_SHARE:
            index = self.rng.randrange(len(self._present))
            self._present[index], self._present[-1] = self._present[-1], self._present[index]
            return self._reaction("reaction_removed", self._present.pop())
        key = (self.rng.choice(self._answer_list), self.rng.choice(self.members), self.rng.choice(EMOJI))
        if self.reactions.get(key) is not None:
            self._present.remove(key)
            return self._reaction("reaction_removed", key)
        self._present.append(key)
        return self._reaction("reaction_added", key)

    def _answer(self) -> Sent:
        ts, author = self._ts(), self.rng.choice(self.members)
        self.answers[ts] = author
        self._answer_list.append(ts)
        event = {"type": "message", "text": f"An answer from {author} at {ts}.", "user": author, "ts": ts, "team": TEAM,
                 "thread_ts": self.prompt_ts, "parent_user_id": "UPREPBOT", "channel": CHANNEL, "event_ts": ts,
                 "channel_type": "channel", "client_msg_id": f"c-{ts}"}
        return Sent("answer", *self._envelope(event))

    def _reaction(self, kind: str, key: tuple[str, str, str]) -> Sent:
        answer, rater, emoji = key
        ts = self._ts()
        self.reactions[key] = float(ts) if kind == "reaction_added" else None
        event = {"type": kind, "user": rater, "reaction": emoji, "item_user": self.answers[answer],
                 "item": {"type": "message", "channel": CHANNEL, "ts": answer}, "event_ts": ts}
        return Sent(kind, *self._envelope(event))

    def expected_tallies(self) -> dict[str, tuple[int, int]]:
        """(count, sum) of the ratings that count, per answer: the latest present reaction of each rater but its author."""
        latest: dict[tuple[str, str], tuple[float, int]] = {}
        for (answer, rater, emoji), added in self.reactions.items():
            if added is None or rater == self.answers[answer]:
                continue
            held = latest.get((answer, rater))
            if held is None or added > held[0]:
                latest[(answer, rater)] = (added, SCORES[emoji])
        tallies = {answer: (0, 0) for answer in self.answers}
        for (answer, _), (_, score) in latest.items():
            count, total = tallies[answer]
            tallies[answer] = (count + 1, total + score)
        return tallies


# ---- prepbot -------------------------------------------------------------------------------------


async def seed(settings: Settings) -> str:
    """Migrate, sync the bank, schedule the channel and post today's prompt; the prompt's ts."""
    engine = db.create_engine(settings.database_url)
    try:
        await prepare_database(settings, engine)
        chat = FakeChat(id_prefix=f"{int(time.time()) - 7200}.")
        core = PrepBot(db.session_factory(engine), chat, default_track=settings.default_track)
        channel = ChannelRef(WorkspaceRef("slack", TEAM), CHANNEL)
        organizer = UserRef(channel.workspace, ORGANIZER)
        now = datetime.now(UTC)
        for word, text in (("setup", "setup 09:00 UTC daily"), ("now", "now")):
            await core.handle(CommandInvoked(f"seed-{word}", now, channel, organizer, text, user_is_admin=True))
        (_, prompt), = chat.prompts
        return prompt.id
    finally:
        await engine.dispose()


async def stored_tallies(url: str) -> tuple[dict[str, tuple[int, int]], int]:
    """Each standing answer's (count, sum), and how many answer and reaction events the inbox holds."""
    engine = db.create_engine(url)
    try:
        async with db.session_factory(engine)() as session:
            rows = (await session.execute(select(models.Answer.message_id, models.Answer.rating_count, models.Answer.rating_sum)
                                          .where(models.Answer.prompt_id.is_not(None), models.Answer.withdrawn_at.is_(None)))).all()
            inbox = len((await session.scalars(select(models.InboxEvent.event_id).where(
                models.InboxEvent.kind.in_(("AnswerPosted", "ReactionAdded", "ReactionRemoved"))))).all())
        return {message: (count, total) for message, count, total in rows}, inbox
    finally:
        await engine.dispose()


def signed(sent: Sent, host: str, retry: int = 0) -> bytes:
    """The whole HTTP request for one delivery, signed as Slack signs it; `retry` numbers a redelivery."""
    body = json.dumps(sent.envelope)
    stamp = str(int(time.time()))
    payload = body.encode()
    retrying = f"X-Slack-Retry-Num: {retry}\r\nX-Slack-Retry-Reason: http_error\r\n" if retry else ""
    head = (f"POST /slack/events HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{retrying}"
            f"X-Slack-Request-Timestamp: {stamp}\r\nX-Slack-Signature: {sign(SIGNING_SECRET, stamp, body)}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n")
    return head.encode() + payload


class _Exchange(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection to the bot, carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._status: asyncio.Future[int] | None = None
        self.open = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, request: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self._status = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._status

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._status is None:
            return
        status_line, *headers = bytes(self._buffer[:end]).split(b"\r\n")
        length = 0
        for header in headers:
            name, _, value = header.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"connection":
                self.open = value.strip().lower() != b"close"
        if len(self._buffer) < end + 4 + length:
            return
        del self._buffer[:end + 4 + length]
        if not self._status.done():
            self._status.set_result(int(status_line.split()[1]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self._status is not None and not self._status.done():
            self._status.set_exception(ConnectionError("the bot closed the connection"))


class Sender:
    """Sends prepared requests over a pool of keep-alive connections, as cheaply as the generator can.

    The generator shares the machine's two cores with the bot, so every cycle it spends is one the
    bot does not get: requests are built and signed before timing starts, written as bytes, and
    answered by reading just the status line and the body's length (about 0.25 ms of CPU per
    request here, the fake Slack included, where aiohttp's client took about 0.45 ms).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self._idle: list[_Exchange] = []
        self._all: list[_Exchange] = []

    async def post(self, request: bytes, timeout: float = 60.0) -> int:
        while self._idle and not self._idle[-1].open:
            self._idle.pop()  # closed by the bot while idle
        exchange = self._idle.pop() if self._idle else await self._connect()
        try:
            status = await asyncio.wait_for(exchange.send(request), timeout)
        except BaseException:
            if exchange.transport is not None:
                exchange.transport.close()
            raise
        if exchange.open:
            self._idle.append(exchange)
        return status

    async def _connect(self) -> _Exchange:
        _, exchange = await asyncio.get_running_loop().create_connection(_Exchange, "127.0.0.1", self.port)
        self._all.append(exchange)
        return exchange

    def close(self) -> None:
        for exchange in self._all:
            if exchange.transport is not None:
                exchange.transport.close()


async def run_step(sender: Sender, events: list[Sent], rate: float) -> tuple[dict[str, Any], list[Sent]]:
    """Send `events` open-loop at `rate` a second; return the step's figures and the events not acknowledged.

    Latency counts from each request's scheduled time. The generator's own garbage collection is
    off while it sends: a full collection of its large heap would stall the schedule, and the
    stall would count against the bot.
    """
    requests = [signed(sent, sender.host) for sent in events]
    gc.collect()
    gc.disable()
    used = time.process_time()
    try:
        step, statuses = await _send(sender, requests, rate)
    finally:
        gc.enable()
    # The generator's process also runs the fake Slack, which the bot calls for rubric notes and lookups.
    step["generator_cpu_ms_per_event"] = round((time.process_time() - used) * 1000 / len(requests), 3)
    return step, [sent for sent, status in zip(events, statuses, strict=True) if status != 200]


async def redeliver(sender: Sender, unacknowledged: list[Sent]) -> list[Sent]:
    """Send again what was not acknowledged, as Slack does (three retries, numbered); return what never was.

    A step past the bot's capacity can leave requests unanswered when the generator gives up on
    them. Slack would deliver those events again, so the check of what was lost counts them after
    their retries, not before. The retries are sent a few at a time, not on a schedule.
    """
    limit = asyncio.Semaphore(50)

    async def one(sent: Sent, retry: int) -> bool:
        async with limit:
            try:
                return await sender.post(signed(sent, sender.host, retry)) == 200
            except (OSError, TimeoutError):
                return False

    for retry in range(1, 4):
        if not unacknowledged:
            break
        acknowledged = await asyncio.gather(*(one(sent, retry) for sent in unacknowledged))
        unacknowledged = [sent for sent, ok in zip(unacknowledged, acknowledged, strict=True) if not ok]
    return unacknowledged


async def _send(sender: Sender, requests: list[bytes], rate: float) -> tuple[dict[str, Any], list[int]]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = [0.0] * len(requests)
    statuses: list[int] = [0] * len(requests)
    lag = 0.0

    async def one(index: int, scheduled: float) -> None:
        try:
            statuses[index] = await sender.post(requests[index])
        except (OSError, TimeoutError):
            statuses[index] = -1
        latencies[index] = loop.time() - scheduled

    tasks: list[asyncio.Task[None]] = []
    start = loop.time() + 0.05
    sent = 0
    while sent < len(requests):
        now = loop.time()
        while sent < len(requests) and start + sent / rate <= now:
            scheduled = start + sent / rate
            lag = max(lag, now - scheduled)
            tasks.append(asyncio.create_task(one(sent, scheduled)))
            sent += 1
        if sent < len(requests):
            await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
    await asyncio.gather(*tasks)
    finished = max(start + i / rate + latency for i, latency in enumerate(latencies))
    ok = sum(1 for status in statuses if status == 200)
    ms = [latency * 1000 for latency in latencies]
    return {
        "rate": rate, "sent": len(requests), "acked": ok, "failed": len(requests) - ok,
        "achieved_per_s": round(ok / (finished - start), 1),
        "p50_ms": round(percentile(ms, 0.5), 1), "p95_ms": round(percentile(ms, 0.95), 1),
        "p99_ms": round(percentile(ms, 0.99), 1), "max_ms": round(max(ms), 1),
        "sender_lag_max_ms": round(lag * 1000, 1),
    }, statuses


class NullCore(PrepBot):
    """A core that records nothing: what is left is the cost of HTTP, verification and the adapter's dispatch."""

    async def handle(self, event: Event) -> Reply | None:
        return None

    async def note_member(self, user: UserRef, *, is_bot: bool) -> None:
        return None


async def serve_adapter_only(fast_path: bool) -> None:
    """The Slack adapter from the environment's settings, over `NullCore`, until interrupted."""
    from adapters.slack import SlackAdapter
    from bot.ports import ChatRouter

    settings = Settings.from_env()
    engine = db.create_engine(settings.database_url)
    sessions = db.session_factory(engine)
    adapter = SlackAdapter(settings, sessions, fast_path=fast_path)
    try:
        await adapter.run(NullCore(sessions, ChatRouter({"slack": adapter.port})))
    finally:
        await engine.dispose()


async def measure_prepbot(url: str, folder: Path, rates: Iterable[int], seconds: float, members: int, seed_value: int,
                          adapter_only: str | None = None) -> dict[str, Any]:
    port = free_port()
    async with FakeSlack(team_id=TEAM) as fake:
        member_ids = [f"U{i:06d}" for i in range(members)]
        for member in member_ids:
            fake.add_user(member)
        environment = bot_environment(url, port, SLACK_BOT_TOKEN=fake.bot_token, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                                      SLACK_API_URL=fake.api_url, PREP_TICK_SECONDS="15")
        prompt_ts = await seed(Settings.from_env(environment))
        workload = Workload(prompt_ts, member_ids, random.Random(seed_value))
        steps: list[dict[str, Any]] = []
        command = ("-m", "benchmarks.ackpath", "--serve-adapter-only", adapter_only) if adapter_only else ("-m", "bot", "run")
        async with running_bot(environment, folder, command) as bot:
            sender = Sender(bot.port)
            try:
                # A warm-up, untimed, so the first step does not pay for first-use costs (statement caches, and
                # each member's first sight: a members row, and a users.info lookup after the ack).
                _, unacknowledged = await run_step(sender, workload.introductions(), 200)
                await wait_until(lambda: len(fake.calls_to("users.info")) >= members, 60, "the lookups of new members")
                for rate in rates:
                    used = cpu_seconds(bot.pid)
                    step, failed = await run_step(sender, workload.events(round(rate * seconds)), rate)
                    step["bot_cpu_ms_per_event"] = round((cpu_seconds(bot.pid) - used) * 1000 / step["sent"], 3)
                    steps.append(step)
                    unacknowledged += failed
                    if step["p99_ms"] > GIVE_UP_P99_MS:
                        break
                    await asyncio.sleep(0.5)
                redelivered = len(unacknowledged)
                never = await redeliver(sender, unacknowledged)
            finally:
                sender.close()
            stored, inbox = await stored_tallies(url)
        if adapter_only:
            return {"steps": steps, "events": workload._ids, "adapter_only": adapter_only}
        expected = workload.expected_tallies()
        wrong = sorted(answer for answer in expected.keys() | stored.keys() if expected.get(answer) != stored.get(answer))
        return {
            "steps": steps, "events": workload._ids, "answers": len(workload.answers),
            "reaction_events": workload._ids - len(workload.answers),
            "inbox_events": inbox, "tallies_checked": len(expected), "tallies_wrong": len(wrong),
            "wrong_examples": [{"answer": a, "expected": expected.get(a), "stored": stored.get(a)} for a in wrong[:5]],
            "redelivered": redelivered, "never_acknowledged": len(never), "lost": workload._ids - inbox,
        }


# ---- the plain sqlite3 baseline ------------------------------------------------------------------

BASELINE_SCHEMA = """
CREATE TABLE inbox (event_id TEXT PRIMARY KEY, kind TEXT NOT NULL, received_at REAL NOT NULL);
CREATE TABLE answers (message_id TEXT PRIMARY KEY, author TEXT NOT NULL, text TEXT, posted_at REAL NOT NULL,
                      rating_count INTEGER NOT NULL DEFAULT 0, rating_sum INTEGER NOT NULL DEFAULT 0);
CREATE TABLE reactions (message_id TEXT NOT NULL, rater TEXT NOT NULL, score INTEGER NOT NULL, present INTEGER NOT NULL,
                        added_at REAL, changed_at REAL NOT NULL, PRIMARY KEY (message_id, rater, score));
CREATE TABLE ratings (message_id TEXT NOT NULL, rater TEXT NOT NULL, score INTEGER NOT NULL, PRIMARY KEY (message_id, rater));
"""


def baseline(path: Path, events: list[Sent]) -> tuple[float, dict[str, tuple[int, int]], list[float]]:
    """Apply `events` with plain sqlite3, one transaction each (WAL, synchronous=FULL).

    Returns transactions/s, the tallies, and each transaction's time in ms (the disk's fsync shows in their tail).
    """
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.executescript(BASELINE_SCHEMA)
    started = time.perf_counter()
    durations: list[float] = []
    for sent in events:
        event = sent.envelope["event"]
        at = float(event["event_ts"])
        began = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        if connection.execute("INSERT OR IGNORE INTO inbox VALUES (?, ?, ?)", (sent.event_id, sent.kind, time.time())).rowcount:
            if sent.kind == "answer":
                connection.execute("INSERT OR IGNORE INTO answers (message_id, author, text, posted_at) VALUES (?, ?, ?, ?)",
                                   (event["ts"], event["user"], event["text"], at))
                _baseline_tally(connection, event["ts"])
            else:
                _baseline_reaction(connection, event, at)
        connection.execute("COMMIT")
        durations.append((time.perf_counter() - began) * 1000)
    elapsed = time.perf_counter() - started
    tallies = {m: (c, s) for m, c, s in connection.execute("SELECT message_id, rating_count, rating_sum FROM answers")}
    connection.close()
    return len(events) / elapsed, tallies, durations


def _baseline_reaction(connection: sqlite3.Connection, event: dict[str, Any], at: float) -> None:
    message, rater, score = event["item"]["ts"], event["user"], SCORES[event["reaction"]]
    added = event["type"] == "reaction_added"
    connection.execute(
        "INSERT INTO reactions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET present = excluded.present, "
        "changed_at = excluded.changed_at, added_at = coalesce(excluded.added_at, added_at) WHERE excluded.changed_at > changed_at",
        (message, rater, score, added, at if added else None, at))
    in_force = connection.execute(
        "SELECT score FROM reactions WHERE message_id = ? AND rater = ? AND present ORDER BY added_at DESC LIMIT 1",
        (message, rater)).fetchone()
    if in_force is None:
        connection.execute("DELETE FROM ratings WHERE message_id = ? AND rater = ?", (message, rater))
    else:
        connection.execute("INSERT INTO ratings VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET score = excluded.score",
                           (message, rater, in_force[0]))
    _baseline_tally(connection, message)


def _baseline_tally(connection: sqlite3.Connection, message: str) -> None:
    connection.execute(
        "UPDATE answers SET (rating_count, rating_sum) = (SELECT count(*), coalesce(sum(r.score), 0) FROM ratings r "
        "WHERE r.message_id = answers.message_id AND r.rater <> answers.author) WHERE message_id = ?", (message,))


# ---- the run -------------------------------------------------------------------------------------


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="a server to create the run's database on")
    parser.add_argument("--small", action="store_true", help="CI size: two slow steps of one second")
    parser.add_argument("--rates", type=lambda text: tuple(int(r) for r in text.split(",")), default=None,
                        help="comma-separated events/s, e.g. 500,1000,2000")
    parser.add_argument("--seconds", type=float, default=None, help="length of each step")
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--baseline-events", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--adapter-only", choices=("fast", "bolt"), default=None,
                        help="measure the Slack adapter over a core that does nothing, with or without the fast path")
    parser.add_argument("--serve-adapter-only", choices=("fast", "bolt"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_adapter_only:
        logging.basicConfig(level=logging.WARNING)
        await serve_adapter_only(args.serve_adapter_only == "fast")
        return {}
    rates = args.rates or (SMALL_RATES if args.small else FULL_RATES)
    seconds = args.seconds or (1.0 if args.small else 5.0)
    members = args.members or (100 if args.small else 1000)
    baseline_events = args.baseline_events or (1000 if args.small else 10_000)
    target_ms, target_rate = TARGET_P99_MS[args.backend], TARGET_RATE[args.backend]

    with tempfile.TemporaryDirectory(prefix="prepbot-ackpath-") as name:
        folder = Path(name)
        # The baseline's events: the same kind of workload, generated the same way.
        reference = Workload("1.000001", [f"U{i:06d}" for i in range(members)], random.Random(args.seed))
        base_events = reference.events(baseline_events)
        base_rate, base_tallies, base_ms = await asyncio.to_thread(baseline, folder / "baseline.db", base_events)
        base_wrong = sum(1 for a, t in reference.expected_tallies().items() if base_tallies.get(a) != t)
        async with database(args.backend, folder, args.postgres_url) as url:
            result = await measure_prepbot(url, folder, rates, seconds, members, args.seed, args.adapter_only)
    if args.adapter_only:
        figures = {"benchmark": "ackpath", "backend": args.backend, "step_seconds": seconds, **result, "machine": machine()}
        print(json.dumps(figures))
        return figures
    passing = [s for s in result["steps"] if s["p99_ms"] <= target_ms and s["failed"] == 0 and s["achieved_per_s"] >= 0.95 * s["rate"]]
    sustained = max((s["rate"] for s in passing), default=0)
    correct = result["lost"] == 0 and result["never_acknowledged"] == 0 and result["tallies_wrong"] == 0
    ratio = sustained / base_rate if base_rate else 0.0
    figures = {
        "benchmark": "ackpath", "backend": args.backend, "small": args.small, "step_seconds": seconds, "members": members,
        "sustained_per_s": sustained if correct else 0, "target_p99_ms": target_ms, "target_per_s": target_rate,
        "baseline_sqlite3_tx_per_s": round(base_rate, 1), "baseline_events": baseline_events, "baseline_tallies_wrong": base_wrong,
        "baseline_tx_p50_ms": round(percentile(base_ms, 0.5), 2), "baseline_tx_p99_ms": round(percentile(base_ms, 0.99), 2),
        "baseline_tx_max_ms": round(max(base_ms), 1),
        "ratio_to_baseline": round(ratio, 3), "target_ratio": TARGET_RATIO,
        **result,
        "targets_met": correct and sustained >= target_rate and (args.backend != "sqlite" or ratio >= TARGET_RATIO),
        "machine": machine(),
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
