"""The question bank: TOML track files, validated on load, synced into the database."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import models

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
KINDS = ("behavioral", "situational", "technical")
MAX_QUESTION_CHARS = 1000
MAX_FOLLOW_UP_CHARS = 500
MAX_POINT_CHARS = 400
MAX_TRACK_ID_CHARS = 64  # the width of tracks.id and questions.track


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str
    probes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Pillar:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Rubric:
    covers: tuple[str, ...]
    pitfalls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BankQuestion:
    id: str
    text: str
    category: str
    pillars: tuple[str, ...]
    difficulty: int
    kind: str
    follow_ups: tuple[str, ...]
    rubric: Rubric
    from_guide: bool = False

    def content_hash(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class BankTrack:
    id: str
    title: str
    prepares_for: str
    source: str
    pillars: tuple[Pillar, ...]
    categories: tuple[Category, ...]
    questions: tuple[BankQuestion, ...]
    path: Path

    def category(self, category_id: str) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a bank file, located by file, item and field."""

    file: str
    where: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.field}: {self.message}"


class BankError(Exception):
    """A bank that cannot be used; `problems` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the question bank:\n{lines}")


class _Checker:
    """Collects problems for one file instead of stopping at the first."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def fail(self, where: str, field: str, message: str) -> None:
        self.problems.append(Problem(self.file, where, field, message))

    def keys(self, where: str, table: dict[str, Any], allowed: Iterable[str]) -> None:
        for key in sorted(set(table) - set(allowed)):
            self.fail(where, key, "unknown field (check the spelling against question_bank/README.md)")

    def text(self, where: str, table: dict[str, Any], field: str, limit: int = 2000) -> str:
        value = table.get(field)
        if value is None:
            self.fail(where, field, "missing")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.fail(where, field, "must be non-empty text")
            return ""
        if len(value) > limit:
            self.fail(where, field, f"is {len(value)} characters; at most {limit}")
        return value.strip()

    def slug(self, where: str, table: dict[str, Any], field: str, limit: int = 100) -> str:
        value = self.text(where, table, field, limit=limit)
        if value and not SLUG.match(value):
            self.fail(where, field, f"{value!r} is not a slug (lowercase letters, digits and single hyphens)")
        return value

    def texts(self, where: str, table: dict[str, Any], field: str, low: int, high: int | None, limit: int) -> tuple[str, ...]:
        value = table.get(field)
        if value is None:
            self.fail(where, field, "missing")
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.fail(where, field, "must be a list of non-empty texts")
            return ()
        if len(value) < low or (high is not None and len(value) > high):
            bounds = f"{low} to {high}" if high is not None else f"at least {low}"
            self.fail(where, field, f"has {len(value)} item(s); needs {bounds}")
        for index, item in enumerate(value, 1):
            if len(item) > limit:
                self.fail(where, f"{field}[{index}]", f"is {len(item)} characters; at most {limit}")
        stripped = [v.strip() for v in value]
        if len(set(stripped)) != len(stripped):
            self.fail(where, field, "repeats an item")
        return tuple(stripped)

    def table_list(self, where: str, document: dict[str, Any], field: str) -> list[dict[str, Any]]:
        value = document.get(field)
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            self.fail(where, field, f"needs at least one [[{field}]] table")
            return []
        return value


def load_track(path: Path) -> BankTrack:
    """Load and validate one track file; raise `BankError` listing every problem."""
    track, problems = _parse_track(path)
    if problems or track is None:
        raise BankError(problems)
    return track


def load_bank(directory: Path) -> dict[str, BankTrack]:
    """Load every `*.toml` track in `directory`; raise `BankError` listing every problem in all of them."""
    tracks: dict[str, BankTrack] = {}
    problems: list[Problem] = []
    files = sorted(directory.glob("*.toml")) if directory.is_dir() else []
    if not files:
        raise BankError([Problem(str(directory), "bank", "files", "no *.toml track files found")])
    for path in files:
        track, found = _parse_track(path)
        problems.extend(found)
        if track is not None and not found:
            tracks[track.id] = track
    if problems:
        raise BankError(problems)
    return tracks


def validate(paths: Iterable[Path]) -> list[Problem]:
    """Every problem in the given track files or folders, without raising."""
    problems: list[Problem] = []
    for path in paths:
        files = sorted(path.glob("*.toml")) if path.is_dir() else [path]
        if not files:
            problems.append(Problem(str(path), "bank", "files", "no *.toml track files found"))
        for file in files:
            problems.extend(_parse_track(file)[1])
    return problems


def _parse_track(path: Path) -> tuple[BankTrack | None, list[Problem]]:
    check = _Checker(str(path))
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        check.fail("track", "file", "does not exist")
        return None, check.problems
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        check.fail("track", "file", f"is not valid TOML: {error}")
        return None, check.problems

    check.keys("track", document, ("track", "pillars", "categories", "questions"))
    header = document.get("track")
    if not isinstance(header, dict):
        check.fail("track", "[track]", "missing")
        header = {}
    check.keys("track", header, ("id", "title", "prepares_for", "source"))
    track_id = check.slug("track", header, "id", limit=MAX_TRACK_ID_CHARS)
    if track_id and track_id != path.stem:
        check.fail("track", "id", f"{track_id!r} must match the file name {path.stem!r}")
    title = check.text("track", header, "title", limit=200)
    prepares_for = check.text("track", header, "prepares_for")
    source = check.text("track", header, "source")

    pillars = _unique_items(check, document, "pillars", "pillar", lambda where, t: Pillar(
        check.slug(where, t, "id"), check.text(where, t, "name", limit=200)), ("id", "name"))
    categories = _unique_items(check, document, "categories", "category", lambda where, t: Category(
        check.slug(where, t, "id"), check.text(where, t, "name", limit=200),
        check.texts(where, t, "probes", 1, None, MAX_FOLLOW_UP_CHARS)), ("id", "name", "probes"))
    pillar_ids = {p.id for p in pillars}
    category_ids = {c.id for c in categories}

    questions: list[BankQuestion] = []
    seen: set[str] = set()
    texts: dict[str, str] = {}
    for index, table in enumerate(check.table_list("track", document, "questions"), 1):
        raw_id = table.get("id")
        where = f"question {raw_id}" if isinstance(raw_id, str) and raw_id else f"question #{index}"
        check.keys(where, table, (
            "id", "text", "category", "pillars", "difficulty", "kind", "from_guide", "follow_ups", "rubric"))
        question_id = check.slug(where, table, "id")
        if question_id in seen:
            check.fail(where, "id", "is used by an earlier question; ids must be unique in a track")
        seen.add(question_id)
        text = check.text(where, table, "text", limit=MAX_QUESTION_CHARS)
        normalised = " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
        if normalised and normalised in texts:
            check.fail(where, "text", f"repeats question {texts[normalised]}")
        texts.setdefault(normalised, question_id)
        category = check.text(where, table, "category", limit=64)
        if category and category not in category_ids:
            check.fail(where, "category", f"{category!r} is not one of the track's categories: {', '.join(sorted(category_ids))}")
        question_pillars = check.texts(where, table, "pillars", 1, None, 64)
        for pillar in question_pillars:
            if pillar not in pillar_ids:
                check.fail(where, "pillars", f"{pillar!r} is not one of the track's pillars: {', '.join(sorted(pillar_ids))}")
        difficulty = table.get("difficulty")
        if type(difficulty) is not int or difficulty not in (1, 2, 3):
            check.fail(where, "difficulty", f"must be 1, 2 or 3, got {difficulty!r}")
        kind = table.get("kind")
        if kind not in KINDS:
            check.fail(where, "kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
        from_guide = table.get("from_guide", False)
        if not isinstance(from_guide, bool):
            check.fail(where, "from_guide", f"must be true or false, got {from_guide!r}")
        follow_ups = check.texts(where, table, "follow_ups", 3, None, MAX_FOLLOW_UP_CHARS)
        rubric_table = table.get("rubric")
        if not isinstance(rubric_table, dict):
            check.fail(where, "rubric", "missing: add a [questions.rubric] table with covers and pitfalls")
            rubric_table = {}
        check.keys(where, rubric_table, ("covers", "pitfalls"))
        rubric = Rubric(
            check.texts(where, rubric_table, "covers", 3, 6, MAX_POINT_CHARS),
            check.texts(where, rubric_table, "pitfalls", 1, 2, MAX_POINT_CHARS),
        )
        questions.append(BankQuestion(
            question_id, text, category, question_pillars,
            difficulty if isinstance(difficulty, int) else 0, str(kind), follow_ups, rubric, bool(from_guide)))

    if check.problems:
        return None, check.problems
    return BankTrack(track_id, title, prepares_for, source, tuple(pillars), tuple(categories), tuple(questions), path), []


def _unique_items(
    check: _Checker, document: dict[str, Any], field: str, label: str, build: Any, allowed: tuple[str, ...],
) -> list[Any]:
    items: list[Any] = []
    for index, table in enumerate(check.table_list("track", document, field), 1):
        raw_id = table.get("id")
        where = f"{label} {raw_id}" if isinstance(raw_id, str) and raw_id else f"{label} #{index}"
        check.keys(where, table, allowed)
        item = build(where, table)
        if any(existing.id == item.id for existing in items):
            check.fail(where, "id", f"is used by an earlier entry in [[{field}]]")
        items.append(item)
    return items


@dataclass(frozen=True, slots=True)
class SyncReport:
    added: int
    updated: int
    retired: int
    unchanged: int


async def sync(session: AsyncSession, tracks: dict[str, BankTrack], now: datetime) -> SyncReport:
    """Bring the database's questions in line with the bank: add, update, retire (never delete).

    Only tracks present in the bank are touched; the caller commits.
    """
    added = updated = retired = unchanged = 0
    for track in tracks.values():
        row = await session.get(models.Track, track.id)
        categories = [{"id": c.id, "name": c.name, "probes": list(c.probes)} for c in track.categories]
        pillars = [{"id": p.id, "name": p.name} for p in track.pillars]
        if row is None:
            session.add(models.Track(id=track.id, title=track.title, categories=categories, pillars=pillars, synced_at=now))
        else:
            row.title, row.categories, row.pillars, row.synced_at = track.title, categories, pillars, now

        existing = {q.slug: q for q in await session.scalars(select(models.Question).where(models.Question.track == track.id))}
        for question in track.questions:
            digest = question.content_hash()
            stored = existing.pop(question.id, None)
            if stored is None:
                session.add(models.Question(
                    track=track.id, slug=question.id, content_hash=digest, created_at=now, updated_at=now,
                    retired_at=None, **_question_fields(question)))
                added += 1
            elif stored.content_hash != digest or stored.retired_at is not None:
                for name, value in _question_fields(question).items():
                    setattr(stored, name, value)
                stored.content_hash, stored.retired_at, stored.updated_at = digest, None, now
                updated += 1
            else:
                unchanged += 1
        for stale in existing.values():
            if stale.retired_at is None:
                stale.retired_at = now
                retired += 1
    await session.flush()
    return SyncReport(added, updated, retired, unchanged)


def _question_fields(question: BankQuestion) -> dict[str, Any]:
    return {
        "text": question.text,
        "category": question.category,
        "pillars": list(question.pillars),
        "difficulty": question.difficulty,
        "kind": question.kind,
        "follow_ups": list(question.follow_ups),
        "rubric": {"covers": list(question.rubric.covers), "pitfalls": list(question.rubric.pitfalls)},
    }
