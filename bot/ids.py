"""A per-process cache of the database ids of workspaces, channels and members.

Those ids never change once a row exists, so the hot path (every reaction and answer) need not
look them up again. An id learned inside a transaction is shared only once that transaction has
committed: a batch that rolls back must not leave behind the ids of rows that were never written.
The cache lives in the session factory's `info`, so it is scoped to one engine, not global.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

CACHE_KEY = "prepbot.ids"
PENDING_KEY = "prepbot.ids.pending"
MAX_ENTRIES = 200_000


@dataclass(frozen=True, slots=True)
class KnownMember:
    """What the hot path needs to know of a member without asking the database."""

    id: int
    is_bot: bool
    name: str | None


class CachingSession(Session):
    """A session whose committed lookups feed the cache in `info[CACHE_KEY]`."""


@event.listens_for(CachingSession, "after_commit")
def _share_committed(session: Session) -> None:
    learned = session.info.pop(PENDING_KEY, None)
    cache = session.info.get(CACHE_KEY)
    if learned and isinstance(cache, dict):
        if len(cache) + len(learned) > MAX_ENTRIES:
            cache.clear()  # a crude bound: the next lookups refill it
        cache.update(learned)


@event.listens_for(CachingSession, "after_rollback")
def _forget_uncommitted(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


def new_cache() -> dict[str, Any]:
    """The `info` a session factory is given so that its sessions share one cache."""
    return {CACHE_KEY: {}}


def forget(info: dict[str, Any]) -> None:
    """Drop every cached id, for whoever deletes rows under a running process (tests resetting a database)."""
    cache = info.get(CACHE_KEY)
    if isinstance(cache, dict):
        cache.clear()


def get(info: dict[str, Any], key: Hashable) -> Any:
    """The id (or `KnownMember`) for `key` learned in this transaction or committed before; else None."""
    learned = info.get(PENDING_KEY)
    if learned and key in learned:
        return learned[key]
    cache = info.get(CACHE_KEY)
    return cache.get(key) if isinstance(cache, dict) else None


def put(info: dict[str, Any], key: Hashable, value: Any) -> None:
    """Remember `value` for `key`, shared with other sessions once this transaction commits."""
    if CACHE_KEY in info:
        info.setdefault(PENDING_KEY, {})[key] = value
