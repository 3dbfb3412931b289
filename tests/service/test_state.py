"""The state store keeps records by shape: what goes in comes back, across restarts and failures."""

from __future__ import annotations

import sqlite3

import pytest

from service.state import SQLiteStateStore, encode


def test_records_come_back_with_their_keys_in_order_after_a_restart(tmp_path) -> None:
    path = tmp_path / "state.sqlite"
    store = SQLiteStateStore(path)
    merchant = store.merchant("m1")
    merchant["_burden"]["merchant.refund"] = 12.5
    merchant["late_key"] = "added after creation"  # a second shape for the same kind
    listing = store.listing("m1", "l1", create=True)
    listing["price"] = 599.0
    store.touch("listing", listing)
    store.flush()
    store.close()
    again = SQLiteStateStore(path)
    assert again.merchant("m1") == merchant
    assert list(again.merchant("m1")) == list(merchant)
    assert again.listing("m1", "l1") == listing
    assert [m["merchant_id"] for m in again.merchants()] == ["m1"]
    again.close()


def test_rows_written_as_whole_dicts_are_still_read(tmp_path) -> None:
    path = tmp_path / "state.sqlite"
    SQLiteStateStore(path).close()
    old = {"merchant_id": "m9", "size_tier": "small", "gmv": 3.0}
    db = sqlite3.connect(path)
    with db:
        db.execute("INSERT INTO merchants (id, data) VALUES (?, ?)", ("m9", encode(old)))
    db.close()
    store = SQLiteStateStore(path)
    assert store.merchant("m9") == old
    store.close()


def test_a_shape_first_used_in_a_failed_transaction_is_written_by_the_next(tmp_path) -> None:
    path = tmp_path / "state.sqlite"
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    store = SQLiteStateStore(db=db)
    store.merchant("m1")
    db.execute("BEGIN")
    store.write_pending()
    db.execute("ROLLBACK")  # the caller's transaction failed; nothing was committed
    store.flush()
    db.close()
    again = SQLiteStateStore(path)
    assert again.merchant("m1")["merchant_id"] == "m1"
    again.close()


def test_a_record_naming_an_unknown_shape_is_refused_clearly(tmp_path) -> None:
    path = tmp_path / "state.sqlite"
    store = SQLiteStateStore(path)
    store.merchant("m1")
    store.flush()
    store.close()
    db = sqlite3.connect(path)
    with db:
        db.execute("DELETE FROM shapes")
    db.close()
    with pytest.raises(ValueError, match="shape 1"):
        SQLiteStateStore(path).merchant("m1")


def test_the_checkpointer_moves_committed_pages_into_the_database_file(tmp_path) -> None:
    from service.state import WalCheckpointer, open_database

    path = tmp_path / "wal.sqlite"
    db = open_database(path)
    checkpointer = WalCheckpointer(path, db, interval=0.01)
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    db.execute("CREATE TABLE t (x BLOB)")
    db.execute("INSERT INTO t VALUES (zeroblob(100000))")
    checkpointer.committed()
    import time

    deadline = time.monotonic() + 10
    while checkpointer.checkpoints == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    checkpointer.close()
    assert checkpointer.checkpoints >= 1
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert (tmp_path / "wal.sqlite").stat().st_size > 100000  # the page left the WAL
    db.close()


def test_a_reader_opened_earlier_reads_shapes_a_writer_added_later(tmp_path) -> None:
    path = tmp_path / "state.sqlite"
    writer = SQLiteStateStore(path)
    writer.merchant("m0")
    writer.flush()
    reader = SQLiteStateStore(path)  # knows shape 1 only
    merchant = writer.merchant("m1")
    merchant["late_key"] = 1  # a new shape, committed after the reader opened
    writer.flush()
    assert {m["merchant_id"] for m in reader.merchants()} == {"m0", "m1"}
    writer.close()
    reader.close()


def test_the_order_cache_is_bounded_and_evicted_orders_come_back_from_the_database(
        tmp_path) -> None:
    store = SQLiteStateStore(tmp_path / "state.sqlite", max_cached_orders=10)
    for i in range(25):
        order = store.order("m1", f"o{i}", create=True)
        order["amount"] = float(i)
        store.flush()
        assert store.cached_orders() <= 10
    # o0 was evicted long ago: it is read back as written, and a change to it is kept.
    first = store.order("m1", "o0")
    assert first is not None and first["amount"] == 0.0
    first["amount"] = 99.0
    store.touch("order", first)
    store.flush()
    for i in range(25, 40):  # push o0 out again
        store.order("m1", f"o{i}", create=True)
        store.flush()
    assert store.order("m1", "o0")["amount"] == 99.0
    assert store.order("m1", "never") is None
    assert sorted(o["order_id"] for o in store._all("order")) == sorted(
        f"o{i}" for i in range(40))
    store.close()


def test_a_cache_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SQLiteStateStore(max_cached_orders=0)
