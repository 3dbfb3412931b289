"""Per-merchant state (merchants, listings, orders, pending deadlines) behind a small store.

The engine reads and writes plain dicts whose keys are the names in `rules.vocabulary`, so the
rule evaluator can read them without copying. The store keeps every object it has handed out in a
cache, remembers which ones changed, and writes those in one transaction on `flush()`: one fsync
per batch rather than per event. The embedded default is SQLite in WAL mode.

A record is stored as its values alone, with the number of its *shape* (the tuple of its keys, in
order), and each shape once in a table of its own: the key names were half to two thirds of every
record, and since every batch rewrites every record it touched, the bytes written per batch (and
the CPU time SQLite spends writing them to the WAL) shrink with them (see bench/RESULTS.md).
"""

from __future__ import annotations

import io
import itertools
import pickle
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from rules.vocabulary import LISTING_FIELDS, MERCHANT_FIELDS, ORDER_FIELDS

SEP = "\x1f"

#: Orders kept in memory by default (a few hundred bytes each); older ones are read back from
#: the database when an event names them.
DEFAULT_MAX_CACHED_ORDERS = 500_000


# sqlite3 binds str, int, float and bytearray parameters as they are, but looks each `bytes`
# parameter up in its adapter registry first and, finding nothing, asks the protocol and the object
# for `__adapt__` and `__conform__`; the blobs of every batch (two per journal row, one per state
# record) paid that search. An adapter for `bytes` (the exact type: subclasses are not affected)
# that returns the object itself (`bytes.__bytes__(b) is b`) ends the search at the registry: the
# same object is bound, about a fifth faster per row. Left alone if something else registered one.
if (bytes, sqlite3.PrepareProtocol) not in sqlite3.adapters:
    sqlite3.register_adapter(bytes, bytes.__bytes__)


class _PlainDataUnpickler(pickle.Unpickler):
    """Loads dicts, lists, strings, numbers, booleans and None; refuses any class or function.

    State records are plain data, so nothing legitimate needs `find_class`; refusing it means a
    tampered state file cannot make loading run code.
    """

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"state records hold plain data only, not {module}.{name}")


def encode(obj: Any) -> bytes:
    # Pickle protocol 5 encodes these records about five times faster than json, which matters:
    # every batch rewrites every record it touched (see bench/RESULTS.md).
    return pickle.dumps(obj, protocol=5)


def decode(blob: bytes) -> Any:
    return _PlainDataUnpickler(io.BytesIO(blob)).load()


def _new_merchant(merchant_id: str) -> dict[str, Any]:
    m: dict[str, Any] = {k: None for k in MERCHANT_FIELDS}
    m.update(
        merchant_id=merchant_id,
        size_tier=None,
        auto_follow_enrolled=False,
        gmv=0.0,
        appeals_filed_month=0,
        appeals_filed_year=0,
        appeals_failed_month=0,
        appeals_failed_year=0,
        appeals_refused_month=0,
        appeal_blocked_until=0.0,
        _month="",
        _year="",
        _burden={},
        _stats={},
    )
    return m


def _new_listing(merchant_id: str, listing_id: str) -> dict[str, Any]:
    listing: dict[str, Any] = {k: None for k in LISTING_FIELDS}
    listing.update(merchant_id=merchant_id, listing_id=listing_id, prompt_pending=False,
                   prompt_silenced_until=0.0, channel="", impressions=0)
    return listing


def _new_order(merchant_id: str, order_id: str) -> dict[str, Any]:
    order: dict[str, Any] = {k: None for k in ORDER_FIELDS}
    order.update(merchant_id=merchant_id, order_id=order_id, shipped=False, refund_status="none",
                 intervened=False)
    return order


# New records are copies of a template (same keys in the same order, so the same shape), with
# their ids and mutable values filled in: a batch creates hundreds of orders.
_MERCHANT, _LISTING, _ORDER = _new_merchant(""), _new_listing("", ""), _new_order("", "")


def new_merchant(merchant_id: str) -> dict[str, Any]:
    m = _MERCHANT.copy()
    m["merchant_id"] = merchant_id
    m["_burden"] = {}
    m["_stats"] = {}
    return m


def new_listing(merchant_id: str, listing_id: str) -> dict[str, Any]:
    listing = _LISTING.copy()
    listing["merchant_id"] = merchant_id
    listing["listing_id"] = listing_id
    return listing


def new_order(merchant_id: str, order_id: str) -> dict[str, Any]:
    order = _ORDER.copy()
    order["merchant_id"] = merchant_id
    order["order_id"] = order_id
    return order


class StateStore(Protocol):
    """What the engine needs from a store; a networked store can implement the same."""

    def merchant(self, merchant_id: str) -> dict[str, Any]: ...
    def listing(self, merchant_id: str, listing_id: str, create: bool = False) \
        -> dict[str, Any] | None: ...
    def order(self, merchant_id: str, order_id: str, create: bool = False) \
        -> dict[str, Any] | None: ...
    def touch(self, kind: str, obj: dict[str, Any]) -> None: ...
    def deadlines(self) -> list[dict[str, Any]]: ...
    def put_deadline(self, deadline: dict[str, Any]) -> None: ...
    def drop_deadline(self, deadline_id: str) -> None: ...
    def meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def merchants(self) -> Iterator[dict[str, Any]]: ...
    def listings(self) -> Iterator[dict[str, Any]]: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


_KINDS = {"merchant": "merchants", "listing": "listings", "order": "orders"}
_ID_FIELD = {"listing": "listing_id", "order": "order_id"}


def open_database(path: str | Path = ":memory:", *, synchronous: str = "FULL") \
        -> sqlite3.Connection:
    """A connection in autocommit mode with WAL and, by default, an fsync on every commit."""
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    if str(path) != ":memory:":
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
    return db


class WalCheckpointer:
    """Copies committed WAL pages back into the database file on a thread of its own.

    By default SQLite does that inside the `COMMIT` that pushes the WAL past 1,000 pages, which
    with batches that rewrite a few thousand pages means inside every commit: a second fsync (of
    the database file) and a copy of every page before the reply can go. Here the writer's own
    checkpoints are switched off and this thread runs passive checkpoints, at most one every
    `interval` seconds after a commit asks for one. Passive checkpoints never block the writer
    (SQLite releases the GIL while it copies), pages rewritten by several batches in between are
    copied once, and durability is unchanged: a commit is durable once it is in the WAL.
    """

    def __init__(self, path: str | Path, writer: sqlite3.Connection, interval: float = 0.25):
        writer.execute("PRAGMA wal_autocheckpoint=0")
        self._writer = writer
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._interval = interval
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self.checkpoints = 0
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """A transaction committed: its pages should reach the database file soon."""
        self._wanted.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wanted.wait()
            if self._stopping.is_set():
                return
            self._wanted.clear()
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                self.checkpoints += 1
            except sqlite3.Error:
                pass  # busy: the next commit asks again, and closing the writer checkpoints
            self._stopping.wait(self._interval)

    def close(self) -> None:
        """Stop the thread; the writer checkpoints again as SQLite does by default."""
        self._stopping.set()
        self._wanted.set()
        self._thread.join()
        self._db.close()
        self._writer.execute("PRAGMA wal_autocheckpoint=1000")


class SQLiteStateStore:
    """SQLite-backed store with a write-back cache; `path=':memory:'` keeps nothing on disk.

    Several stores can share one connection under different table prefixes (the service keeps
    the primary and the shadow rulebook set's state side by side), so that one transaction can
    commit all of them together with the event journal: see `write_pending` and `committed`.
    """

    def __init__(self, path: str | Path = ":memory:", *, synchronous: str = "FULL",
                 db: sqlite3.Connection | None = None, prefix: str = "",
                 max_cached_orders: int | None = DEFAULT_MAX_CACHED_ORDERS):
        if max_cached_orders is not None and max_cached_orders < 1:
            raise ValueError(f"max_cached_orders must be at least 1, not {max_cached_orders}")
        self.path = str(path)
        self._max_orders = max_cached_orders
        self._owns_db = db is None
        self._db = db if db is not None else open_database(path, synchronous=synchronous)
        self._t = {kind: f"{prefix}{table}" for kind, table in _KINDS.items()}
        self._t["deadline"] = f"{prefix}deadlines"
        self._t["meta"] = f"{prefix}meta"
        for kind in _KINDS:
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {self._t[kind]} "
                             "(id TEXT PRIMARY KEY, data BLOB NOT NULL)")
        self._db.execute(f"CREATE TABLE IF NOT EXISTS {self._t['deadline']} "
                         "(id TEXT PRIMARY KEY, due REAL NOT NULL, data BLOB NOT NULL)")
        self._db.execute(f"CREATE TABLE IF NOT EXISTS {self._t['meta']} "
                         "(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._t["shape"] = f"{prefix}shapes"
        self._db.execute(f"CREATE TABLE IF NOT EXISTS {self._t['shape']} "
                         "(id INTEGER PRIMARY KEY, keys BLOB NOT NULL)")
        self._keys_of: dict[int, tuple[str, ...]] = {
            shape_id: tuple(decode(keys))
            for shape_id, keys in self._db.execute(f"SELECT id, keys FROM {self._t['shape']}")
        }
        self._shape_of = {keys: shape_id for shape_id, keys in self._keys_of.items()}
        self._shapes_pending: dict[int, tuple[str, ...]] = {}
        self._cache: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in _KINDS}
        self._dirty: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in _KINDS}
        # The per-kind caches the hot lookups use directly (never replaced, only cleared).
        self._merchants, self._listings, self._orders = (
            self._cache["merchant"], self._cache["listing"], self._cache["order"])
        self._dirty_merchants = self._dirty["merchant"]
        self._deadlines_put: dict[str, dict[str, Any]] = {}
        self._deadlines_drop: set[str] = set()
        self._meta: dict[str, str] = {}
        # The cache never evicts and every write goes through it, so when the database started
        # empty a cache miss means "does not exist" and needs no query.
        self._cache_is_complete = all(
            self._db.execute(f"SELECT 1 FROM {self._t[k]} LIMIT 1").fetchone() is None
            for k in _KINDS
        )
        # Orders are the one kind that grows without bound (merchants and listings are as many
        # as there are), so only they are evicted; once one has been, a miss asks the database.
        self._orders_complete = self._cache_is_complete

    # -- records ----------------------------------------------------------------------------
    def _encode_record(self, obj: dict[str, Any]) -> bytes:
        keys = tuple(obj)
        shape = self._shape_of.get(keys)
        if shape is None:
            # Kept pending until a commit includes it, however many transactions fail first.
            shape = max(self._keys_of, default=0) + 1
            self._shape_of[keys] = shape
            self._keys_of[shape] = keys
            self._shapes_pending[shape] = keys
        return pickle.dumps((shape, tuple(obj.values())), protocol=5)

    def _decode_record(self, blob: bytes) -> dict[str, Any]:
        data = decode(blob)
        if isinstance(data, dict):
            return data  # written before records were stored by shape
        shape, values = data
        keys = self._keys_of.get(shape)
        if keys is None:  # another connection may have committed it since this store opened
            row = self._db.execute(f"SELECT keys FROM {self._t['shape']} WHERE id = ?",
                                   (shape,)).fetchone()
            if row is not None:
                keys = self._keys_of[shape] = tuple(decode(row[0]))
                self._shape_of[keys] = shape
        if keys is None or len(keys) != len(values):
            raise ValueError(f"a state record names shape {shape}, which table "
                             f"{self._t['shape']} does not hold with {len(values)} keys")
        return dict(zip(keys, values, strict=True))

    # -- objects ----------------------------------------------------------------------------
    def _load(self, kind: str, key: str) -> dict[str, Any] | None:
        cache = self._cache[kind]
        obj = cache.get(key)
        if obj is None and not self._complete(kind):
            row = self._db.execute(
                f"SELECT data FROM {self._t[kind]} WHERE id = ?", (key,)
            ).fetchone()
            if row is not None:
                obj = self._decode_record(row[0])
                cache[key] = obj
        return obj

    def merchant(self, merchant_id: str) -> dict[str, Any]:
        obj = self._merchants.get(merchant_id)
        if obj is None:
            obj = None if self._cache_is_complete else self._load("merchant", merchant_id)
            if obj is None:
                obj = new_merchant(merchant_id)
                self._merchants[merchant_id] = obj
                self._dirty["merchant"][merchant_id] = obj
        return obj

    def listing(self, merchant_id: str, listing_id: str, create: bool = False) \
            -> dict[str, Any] | None:
        key = merchant_id + SEP + listing_id
        obj = self._listings.get(key)
        if obj is None:
            obj = None if self._cache_is_complete else self._load("listing", key)
            if obj is None and create:
                obj = new_listing(merchant_id, listing_id)
                self._listings[key] = obj
                self._dirty["listing"][key] = obj
        return obj

    def order(self, merchant_id: str, order_id: str, create: bool = False) \
            -> dict[str, Any] | None:
        key = merchant_id + SEP + order_id
        obj = self._orders.get(key)
        if obj is None:
            obj = None if self._orders_complete else self._load("order", key)
            if obj is None and create:
                obj = new_order(merchant_id, order_id)
                self._orders[key] = obj
                self._dirty["order"][key] = obj
        return obj

    def touch(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "merchant":
            self._dirty_merchants[obj["merchant_id"]] = obj
        else:
            self._dirty[kind][obj["merchant_id"] + SEP + obj[_ID_FIELD[kind]]] = obj

    def merchants(self) -> Iterator[dict[str, Any]]:
        """Every merchant, cached or stored (for reports over a whole run)."""
        return self._all("merchant")

    def listings(self) -> Iterator[dict[str, Any]]:
        """Every listing, cached or stored (for exposure concentration)."""
        return self._all("listing")

    def _all(self, kind: str) -> Iterator[dict[str, Any]]:
        cache = self._cache[kind]
        yield from list(cache.values())
        if self._complete(kind):
            return
        for key, data in self._db.execute(f"SELECT id, data FROM {self._t[kind]}").fetchall():
            if key not in cache:
                yield self._decode_record(data)

    def _complete(self, kind: str) -> bool:
        """Whether the cache holds every record of `kind` (a miss means there is none)."""
        return self._orders_complete if kind == "order" else self._cache_is_complete

    def cached_orders(self) -> int:
        return len(self._orders)

    def _evict_orders(self) -> None:
        """Forget the orders cached longest ago (all clean: called right after a commit) until
        a fifth of the room is free, so eviction runs once every many batches, not every one.
        Orders are mostly read in the days after they are placed (shipping, refunds, appeals),
        so the oldest cached are the least likely to be asked for; one that is comes back from
        the database."""
        assert self._max_orders is not None
        orders = self._orders
        excess = len(orders) - self._max_orders * 4 // 5
        for key in list(itertools.islice(iter(orders), excess)):
            del orders[key]
        self._orders_complete = False

    # -- deadlines --------------------------------------------------------------------------
    def deadlines(self) -> list[dict[str, Any]]:
        stored = {
            key: decode(data)
            for key, data in self._db.execute(
                f"SELECT id, data FROM {self._t['deadline']} ORDER BY due, id")
        }
        for key in self._deadlines_drop:
            stored.pop(key, None)
        stored.update(self._deadlines_put)
        return sorted(stored.values(), key=lambda d: (d["due"], d["id"]))

    def put_deadline(self, deadline: dict[str, Any]) -> None:
        self._deadlines_drop.discard(deadline["id"])
        self._deadlines_put[deadline["id"]] = deadline

    def drop_deadline(self, deadline_id: str) -> None:
        self._deadlines_put.pop(deadline_id, None)
        self._deadlines_drop.add(deadline_id)

    # -- meta -------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        if key in self._meta:
            return self._meta[key]
        row = self._db.execute(f"SELECT value FROM {self._t['meta']} WHERE key = ?",
                               (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._meta[key] = value

    # -- durability -------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every change since the last flush in one transaction (one fsync)."""
        db = self._db
        db.execute("BEGIN")
        try:
            self.write_pending()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.committed()

    def write_pending(self) -> None:
        """Write the changes inside a transaction the caller opened and will commit."""
        db = self._db
        encode_record = self._encode_record
        records = {kind: [(k, encode_record(v)) for k, v in dirty.items()]
                   for kind, dirty in self._dirty.items() if dirty}
        if self._shapes_pending:
            db.executemany(f"INSERT OR REPLACE INTO {self._t['shape']} (id, keys) VALUES (?, ?)",
                           [(k, encode(v)) for k, v in self._shapes_pending.items()])
        # An upsert rewrites a stored record in place; `INSERT OR REPLACE` deletes the row and
        # inserts a new one, touching the id index twice: twice the CPU per record in SQLite.
        for kind, rows in records.items():
            db.executemany(f"INSERT INTO {self._t[kind]} (id, data) VALUES (?, ?) "
                           "ON CONFLICT (id) DO UPDATE SET data = excluded.data", rows)
        if self._deadlines_drop:
            db.executemany(f"DELETE FROM {self._t['deadline']} WHERE id = ?",
                           [(k,) for k in self._deadlines_drop])
        if self._deadlines_put:
            db.executemany(
                f"INSERT INTO {self._t['deadline']} (id, due, data) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET due = excluded.due, data = excluded.data",
                [(k, v["due"], encode(v)) for k, v in self._deadlines_put.items()],
            )
        if self._meta:
            db.executemany(f"INSERT INTO {self._t['meta']} (key, value) VALUES (?, ?) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                           list(self._meta.items()))

    def committed(self) -> None:
        """The caller's transaction committed: forget what was pending."""
        for dirty in self._dirty.values():
            dirty.clear()
        if self._max_orders is not None and len(self._orders) > self._max_orders:
            self._evict_orders()
        self._shapes_pending.clear()
        self._deadlines_put.clear()
        self._deadlines_drop.clear()
        self._meta.clear()

    def close(self) -> None:
        if self._owns_db:
            self._db.close()
