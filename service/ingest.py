"""Durable, idempotent ingestion: nothing acknowledged is lost, nothing is counted twice.

A batch is answered only after one SQLite transaction has committed (with an fsync) all of:
the journal rows of its new events with their decisions, and the state changes of the primary
and the shadow rulebook sets. So after a crash the database holds exactly the acknowledged
batches, and a client that resends what was not acknowledged gets the same totals as a run that
never stopped. A resent `event_id` is answered from the journal with its original decisions and
changes nothing.

Batches stay batches into the journal: each new event's answer is serialised once, as the
`EventResult` body the reply carries (see service.convert), and that same body is the journal row's
`result`, so a duplicate is answered with the stored bytes as they are and nothing is decoded.
The journal's `event` column holds the event as it arrived: the serialised `rulebook.v1.Event`
(a BLOB) when the caller passes the request's messages, as the gRPC service does, otherwise the
event's JSON (TEXT); SQLite's `typeof(event)` tells them apart.

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
from service.api.rulebook.v1 import evaluation_service_pb2
from service.convert import Rejected, legacy_result_body, result_body
from service.decision import Decision
from service.engine import Engine
from service.events import Event, FieldViolation, event_to_json
from service.state import (
    DEFAULT_MAX_CACHED_ORDERS,
    SQLiteStateStore,
    WalCheckpointer,
    decode,
    open_database,
)

PRIMARY, SHADOW = "primary", "shadow"

#: The first byte of a pickle (protocol 2 or later); a result body starts with a field key.
_PICKLED = b"\x80"

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


@dataclass(slots=True)
class EventOutcome:
    """The answer for one event of a batch.

    `result` is the serialised `EventResult` body (event id, decisions, shadow decisions) the
    reply carries and the journal keeps; empty for an invalid item, which has `errors` instead.
    """

    index: int
    event_id: str
    result: bytes = b""
    errors: list[FieldViolation] = field(default_factory=list)
    duplicate: bool = False

    def _parsed(self) -> Any:
        return evaluation_service_pb2.EventResult.FromString(self.result)

    @property
    def decisions(self) -> list[Any]:
        """The primary set's decisions, as `rulebook.v1.Decision` messages."""
        return list(self._parsed().decisions)

    @property
    def shadow_decisions(self) -> list[Any]:
        """The shadow set's decisions, as `rulebook.v1.Decision` messages."""
        return list(self._parsed().shadow_decisions)


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

    def __init__(self, path: str | Path, primary: RulebookSet, shadow: RulebookSet | None = None,
                 *, max_cached_orders: int | None = DEFAULT_MAX_CACHED_ORDERS):
        self.path = str(path)
        self._max_cached_orders = max_cached_orders
        self._db = open_database(path)
        self._db.executescript(_JOURNAL)
        # Pages reach the database file off the reply path (see WalCheckpointer).
        self._checkpointer = WalCheckpointer(path, self._db) if self.path != ":memory:" else None
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
            PRIMARY: SQLiteStateStore(db=self._db, prefix="primary_",
                                      max_cached_orders=self._max_cached_orders),
            SHADOW: SQLiteStateStore(db=self._db, prefix="shadow_",
                                     max_cached_orders=self._max_cached_orders),
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
               timeout: float | None = None,
               received: Sequence[Any] | None = None) -> BatchReport:
        """Evaluate, journal and commit a batch; invalid items are answered with their errors.

        Waits at most `timeout` seconds for earlier batches (TimeoutError after that).
        `received`, when given, holds the protobuf message each item came from (same order);
        the journal keeps their serialised form instead of the events' JSON.
        `before_commit` is a test hook to simulate a crash between evaluation and commit.
        """
        if received is not None and len(received) != len(items):
            raise ValueError(f"received holds {len(received)} messages for {len(items)} items")
        if not self._lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            raise TimeoutError("earlier batches are still being evaluated")
        try:
            return self._ingest(items, before_commit, received)
        finally:
            self._lock.release()

    def _ingest(self, items: Sequence[Event | Rejected],
                before_commit: Callable[[], None] | None,
                received: Sequence[Any] | None) -> BatchReport:
        outcomes: list[EventOutcome] = []
        new_events: list[Event] = []
        duplicates: list[Event] = []
        fresh: list[tuple[EventOutcome, Event, Any]] = []
        seen_in_batch: dict[str, EventOutcome] = {}
        # Every item's id, read once; an invalid item's is looked up too, and never consulted.
        ids = [it.event_id for it in items]
        stored = self._journalled(ids)
        # The messages as a list: indexing a protobuf repeated field wraps a message each time.
        messages: Sequence[Any] = list(received) if received is not None else [None] * len(items)
        for index, (item, event_id) in enumerate(zip(items, ids, strict=True)):
            if isinstance(item, Rejected):
                outcomes.append(EventOutcome(index, event_id, errors=list(item.errors)))
                continue
            out = EventOutcome(index, event_id)
            outcomes.append(out)
            earlier = seen_in_batch.get(event_id)
            if earlier is not None or event_id in stored:
                out.duplicate = True
                duplicates.append(item)
                if earlier is None:
                    out.result = stored[event_id]
                continue
            seen_in_batch[event_id] = out
            fresh.append((out, item, messages[index]))
        try:
            return self._evaluate_and_commit(outcomes, fresh, seen_in_batch, new_events,
                                             duplicates, before_commit)
        except BaseException:
            # The engines' memory is now ahead of the database: rebuild it from what committed,
            # so the batch can be resent as if it had never arrived.
            self._open_state(self.sets())
            raise

    def _evaluate_and_commit(self, outcomes: list[EventOutcome],
                             fresh: list[tuple[EventOutcome, Event, Any]],
                             seen_in_batch: dict[str, EventOutcome], new_events: list[Event],
                             duplicates: list[Event],
                             before_commit: Callable[[], None] | None) -> BatchReport:
        new_decisions: dict[str, list[Decision]] = {role: [] for role in self.engines}
        rows = []
        primary = self.engines.get(PRIMARY)
        shadow = self.engines.get(SHADOW)
        primary_new = new_decisions.get(PRIMARY)
        shadow_new = new_decisions.get(SHADOW)
        no_decisions: list[Decision] = []
        seq = self._seq
        for out, event, message in fresh:
            decisions = primary.process_one(event) if primary is not None else no_decisions
            shadowed = shadow.process_one(event) if shadow is not None else no_decisions
            if primary_new is not None:
                primary_new.extend(decisions)
            if shadow_new is not None:
                shadow_new.extend(shadowed)
            event_id = out.event_id
            out.result = body = result_body(event_id, decisions, shadowed)
            seq += 1
            rows.append((event_id, seq, event.type, event.merchant_id,
                         event_to_json(event) if message is None else message.SerializeToString(),
                         body))
            new_events.append(event)
        # Duplicates inside one batch answer with the decisions of their first occurrence.
        for out in outcomes:
            if out.duplicate and not out.result and out.event_id in seen_in_batch:
                out.result = seen_in_batch[out.event_id].result
        if before_commit is not None:
            before_commit()
        started = time.perf_counter()
        self._commit(rows)
        self._seq = seq
        fsync_seconds = time.perf_counter() - started
        return BatchReport(outcomes, new_decisions, fsync_seconds, new_events, duplicates)

    def _journalled(self, ids: list[str]) -> dict[str, bytes]:
        """The stored result body of every id already in the journal."""
        found: dict[str, bytes] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for event_id, blob in self._db.execute(
                    f"SELECT event_id, result FROM journal WHERE event_id IN ({marks})", chunk):
                if blob[:1] == _PICKLED:
                    # A row from before bodies were journalled: its decisions as pickled dicts.
                    primary, shadow = decode(blob)
                    blob = legacy_result_body(event_id, primary, shadow)
                found[event_id] = blob
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
        if self._checkpointer is not None:
            self._checkpointer.committed()

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
            if self._checkpointer is not None:
                self._checkpointer.close()
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
