"""Durable, idempotent ingestion: nothing acknowledged is lost, nothing is counted twice.

A batch is answered only after one SQLite transaction has committed (with an fsync) all of:
the journal rows of its new events with their decisions, and the state changes of the primary
and the shadow rulebook sets. So after a crash the database holds exactly the acknowledged
batches, and a client that resends what was not acknowledged gets the same totals as a run that
never stopped. A resent `event_id` is answered from the journal with its original decisions and
changes nothing.

One `Ingestor` serialises batches (the engines are single-threaded); the gRPC layer calls it from
its worker threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules.rulebook import RulebookSet
from service.decision import Decision
from service.engine import Engine
from service.events import Event, FieldViolation, event_to_json
from service.state import SQLiteStateStore, decode, encode, open_database

PRIMARY, SHADOW = "primary", "shadow"

_JOURNAL = """
CREATE TABLE IF NOT EXISTS journal (
    event_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    event TEXT NOT NULL,
    result BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Rejected:
    """An item of a batch that did not validate: answered with its errors, never stored."""

    event_id: str
    errors: list[FieldViolation]


@dataclass
class EventOutcome:
    """The answer for one event of a batch, as plain data (the gRPC layer converts it)."""

    index: int
    event_id: str
    decisions: list[dict[str, Any]] = field(default_factory=list)
    shadow_decisions: list[dict[str, Any]] = field(default_factory=list)
    errors: list[FieldViolation] = field(default_factory=list)
    duplicate: bool = False


@dataclass
class BatchReport:
    """What a batch did, for metrics: new decisions by role, and how long the commit took."""

    outcomes: list[EventOutcome]
    new_decisions: dict[str, list[Decision]]
    fsync_seconds: float
    new_events: list[Event]
    duplicates: list[Event]


class Ingestor:
    """Journal, primary engine and optional shadow engine over one SQLite database."""

    def __init__(self, path: str | Path, primary: RulebookSet, shadow: RulebookSet | None = None):
        self.path = str(path)
        self._db = open_database(path)
        self._db.executescript(_JOURNAL)
        self._lock = threading.RLock()
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()
        self._seq = int(row[0])
        self._generation = 0
        self.engines: dict[str, Engine] = {}
        self._open_state({PRIMARY: primary} | ({SHADOW: shadow} if shadow else {}))

    def _open_state(self, sets: dict[str, RulebookSet]) -> None:
        """(Re)build stores and engines from what the database has committed."""
        old = self.engines
        self._stores = {
            PRIMARY: SQLiteStateStore(db=self._db, prefix="primary_"),
            SHADOW: SQLiteStateStore(db=self._db, prefix="shadow_"),
        }
        engines = {role: self._new_engine(role, rs) for role, rs in sets.items()}
        self.engines = engines  # readers on other threads see the old or the new, never none
        for engine in old.values():
            engine.close(flush=False)

    # -- rulebook sets ----------------------------------------------------------------------
    def _new_engine(self, role: str, rulebook_set: RulebookSet) -> Engine:
        # durable_rules cannot unregister rulesets, so each engine gets fresh names.
        self._generation += 1
        return Engine(rulebook_set, self._stores[role],
                      host_prefix=f"g{self._generation}.{role}.")

    def _install(self, role: str, rulebook_set: RulebookSet) -> Engine:
        engine = self._new_engine(role, rulebook_set)
        old = self.engines.get(role)
        self.engines = {**self.engines, role: engine}
        if old is not None:
            old.close(flush=False)  # everything it did is committed with its batches
        return engine

    def replace(self, role: str, rulebook_set: RulebookSet) -> None:
        """Swap a role's rulebook set between batches; the state carries over."""
        with self._lock:
            self._install(role, rulebook_set)

    def sets(self) -> dict[str, RulebookSet]:
        return {role: engine.set for role, engine in self.engines.items()}

    def store(self, role: str = PRIMARY) -> SQLiteStateStore:
        return self._stores[role]

    # -- batches ----------------------------------------------------------------------------
    def ingest(self, items: Sequence[Event | Rejected],
               before_commit: Callable[[], None] | None = None,
               timeout: float | None = None) -> BatchReport:
        """Evaluate, journal and commit a batch; invalid items are answered with their errors.

        Waits at most `timeout` seconds for earlier batches (TimeoutError after that).
        `before_commit` is a test hook to simulate a crash between evaluation and commit.
        """
        if not self._lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            raise TimeoutError("earlier batches are still being evaluated")
        try:
            return self._ingest(items, before_commit)
        finally:
            self._lock.release()

    def _ingest(self, items: Sequence[Event | Rejected],
                before_commit: Callable[[], None] | None) -> BatchReport:
        outcomes: list[EventOutcome] = []
        new_events: list[Event] = []
        duplicates: list[Event] = []
        fresh: list[tuple[EventOutcome, Event]] = []
        seen_in_batch: dict[str, EventOutcome] = {}
        ids = [it.event_id for it in items if not isinstance(it, Rejected)]
        stored = self._journalled(ids)
        for index, item in enumerate(items):
            if isinstance(item, Rejected):
                outcomes.append(EventOutcome(index, item.event_id, errors=list(item.errors)))
                continue
            out = EventOutcome(index, item.event_id)
            outcomes.append(out)
            earlier = seen_in_batch.get(item.event_id)
            if item.event_id in stored or earlier is not None:
                out.duplicate = True
                duplicates.append(item)
                if earlier is None:
                    out.decisions, out.shadow_decisions = stored[item.event_id]
                continue
            seen_in_batch[item.event_id] = out
            fresh.append((out, item))
        try:
            return self._evaluate_and_commit(outcomes, fresh, seen_in_batch, new_events,
                                             duplicates, before_commit)
        except BaseException:
            # The engines' memory is now ahead of the database: rebuild it from what committed,
            # so the batch can be resent as if it had never arrived.
            self._open_state(self.sets())
            raise

    def _evaluate_and_commit(self, outcomes: list[EventOutcome],
                             fresh: list[tuple[EventOutcome, Event]],
                             seen_in_batch: dict[str, EventOutcome], new_events: list[Event],
                             duplicates: list[Event],
                             before_commit: Callable[[], None] | None) -> BatchReport:
        new_decisions: dict[str, list[Decision]] = {role: [] for role in self.engines}
        rows = []
        for out, event in fresh:
            for role, engine in self.engines.items():
                decisions = engine.process_one(event)
                new_decisions[role].extend(decisions)
                dicts = [d.to_dict() for d in decisions]
                if role == PRIMARY:
                    out.decisions = dicts
                else:
                    out.shadow_decisions = dicts
            self._seq += 1
            rows.append((event.event_id, self._seq, event.type, event.merchant_id,
                         event_to_json(event), encode((out.decisions, out.shadow_decisions))))
            new_events.append(event)
        # Duplicates inside one batch answer with the decisions of their first occurrence.
        for out in outcomes:
            if out.duplicate and not out.decisions and out.event_id in seen_in_batch:
                first = seen_in_batch[out.event_id]
                out.decisions, out.shadow_decisions = first.decisions, first.shadow_decisions
        if before_commit is not None:
            before_commit()
        started = time.perf_counter()
        self._commit(rows)
        fsync_seconds = time.perf_counter() - started
        return BatchReport(outcomes, new_decisions, fsync_seconds, new_events, duplicates)

    def _journalled(self, ids: list[str]) -> dict[str, tuple[list[dict], list[dict]]]:
        found: dict[str, tuple[list[dict], list[dict]]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for event_id, blob in self._db.execute(
                    f"SELECT event_id, result FROM journal WHERE event_id IN ({marks})", chunk):
                primary, shadow = decode(blob)
                found[event_id] = (primary, shadow)
        return found

    def _commit(self, rows: list[tuple[Any, ...]]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for store in self._stores.values():
                store.write_pending()
            if rows:
                db.executemany("INSERT INTO journal (event_id, seq, event_type, merchant_id, "
                               "event, result) VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for store in self._stores.values():
            store.committed()

    def advance_to(self, time_: float) -> dict[str, list[Decision]]:
        """Fire deadlines due by `time_` in every set (a clock tick with no event)."""
        with self._lock:
            try:
                fired = {role: engine.advance_to(time_) for role, engine in self.engines.items()}
                self._commit([])
            except BaseException:
                self._open_state(self.sets())
                raise
            return fired

    def locked(self) -> threading.RLock:
        """Hold this to read state between batches (e.g. a metrics scrape)."""
        return self._lock

    def journal_size(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM journal").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            for engine in self.engines.values():
                engine.close(flush=False)  # every batch committed its own changes
            self._db.close()


def burden_totals(store: SQLiteStateStore) -> dict[str, float]:
    """Sum of every merchant's burden by party.category: what the kill test compares."""
    totals: dict[str, float] = {}
    for m in store.merchants():
        for key, amount in (m.get("_burden") or {}).items():
            totals[key] = totals.get(key, 0.0) + amount
    return {k: round(v, 6) for k, v in sorted(totals.items())}


__all__ = ["PRIMARY", "SHADOW", "BatchReport", "EventOutcome", "Ingestor", "Rejected",
           "burden_totals"]
