"""Durable storage for a node: JSON documents in SQLite, one table, grouped by collection.

SQLite gives real durability (a write that returned is on disk) without a server. A node
runs one event loop; writes are short, so a single connection guarded by a lock suffices.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Compact and unescaped: the smallest text for a document, quickest to write and to read back.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class DocumentStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # re-entered by the writes inside a `transaction`
        self._in_transaction = False
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS documents ("
            " collection TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL,"
            " doc TEXT NOT NULL, PRIMARY KEY (collection, key))"
        )
        # Insertion order within a collection: the next `seq` and every listing read it, and
        # without an index each insert would scan its whole collection (a credential issuer's
        # thousand status entries, a station's audit log).
        self._db.execute("CREATE INDEX IF NOT EXISTS documents_order ON documents (collection, seq)")

    def put(self, collection: str, key: str, doc: Any) -> None:
        """Insert or replace; `seq` keeps insertion order for listing."""
        with self._lock:
            self._db.execute(
                "INSERT INTO documents (collection, key, seq, doc) VALUES (?, ?,"
                " (SELECT COALESCE(MAX(seq), 0) + 1 FROM documents WHERE collection = ?), ?)"
                " ON CONFLICT (collection, key) DO UPDATE SET doc = excluded.doc",
                (collection, key, collection, _encode(doc)),
            )

    def insert_new(self, collection: str, key: str, doc: Any) -> bool:
        """Insert only when the key is new; False when it existed (one-use values)."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO documents (collection, key, seq, doc) VALUES (?, ?,"
                " (SELECT COALESCE(MAX(seq), 0) + 1 FROM documents WHERE collection = ?), ?)",
                (collection, key, collection, _encode(doc)),
            )
            return cursor.rowcount == 1

    def put_many(self, collection: str, items: list[tuple[str, Any]]) -> None:
        self.put_collections({collection: items})

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """The writes made inside it are kept together or not at all, with one wait for the
        disk instead of one each (a credential issuer writes its status counter and the issued
        credential so). Transactions do not nest."""
        with self._lock:
            if self._in_transaction:
                raise RuntimeError("a transaction is already open on this store")
            self._db.execute("BEGIN")
            self._in_transaction = True
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._in_transaction = False

    def put_collections(self, batches: dict[str, list[tuple[str, Any]]]) -> None:
        """Several collections' documents in one transaction: one wait for the disk, not one
        per collection (a data station writes its synthetic data so at its first start)."""
        with self.transaction():
            for collection, items in batches.items():
                start = self._db.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM documents WHERE collection = ?", (collection,)
                ).fetchone()[0]
                self._db.executemany(
                    "INSERT OR REPLACE INTO documents (collection, key, seq, doc) VALUES (?, ?, ?, ?)",
                    [(collection, k, start + i + 1, _encode(d)) for i, (k, d) in enumerate(items)],
                )

    def get(self, collection: str, key: str) -> Any | None:
        with self._lock:
            row = self._db.execute(
                "SELECT doc FROM documents WHERE collection = ? AND key = ?", (collection, key)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def delete(self, collection: str, key: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM documents WHERE collection = ? AND key = ?", (collection, key))
            return cursor.rowcount == 1

    def list(self, collection: str, limit: int | None = None, key_prefix: str = "") -> list[Any]:
        return list(self.iterate(collection, limit, key_prefix))

    def iterate(
        self, collection: str, limit: int | None = None, key_prefix: str = "", *, newest_first: bool = False
    ) -> Iterator[Any]:
        """In insertion order (or the newest first); `key_prefix` keeps to keys that start with
        it (using the primary key's index, so a lookup by, say, citizen does not read the whole
        collection)."""
        order = "DESC" if newest_first else "ASC"
        with self._lock:
            rows = self._db.execute(
                f"SELECT doc FROM documents WHERE collection = ? AND key >= ? AND key < ? ORDER BY seq {order} LIMIT ?",
                (collection, key_prefix, key_prefix + "\U0010ffff", -1 if limit is None else limit),
            ).fetchall()
        for (doc,) in rows:
            yield json.loads(doc)

    def last(self, collection: str) -> Any | None:
        """The most recently inserted document of the collection."""
        with self._lock:
            row = self._db.execute(
                "SELECT doc FROM documents WHERE collection = ? ORDER BY seq DESC LIMIT 1", (collection,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def count(self, collection: str) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM documents WHERE collection = ?", (collection,)).fetchone()[0]

    def keep_newest(self, collection: str, count: int) -> None:
        """Drop all but the `count` most recently inserted documents of the collection."""
        with self._lock:
            self._db.execute(
                "DELETE FROM documents WHERE collection = ? AND seq NOT IN "
                "(SELECT seq FROM documents WHERE collection = ? ORDER BY seq DESC LIMIT ?)",
                (collection, collection, count),
            )

    def delete_where_key_below(self, collection: str, key: str) -> None:
        """Drop keys sorting before `key`: used for time-ordered keys that expire."""
        with self._lock:
            self._db.execute("DELETE FROM documents WHERE collection = ? AND key < ?", (collection, key))

    def close(self) -> None:
        with self._lock:
            self._db.close()
