"""An append-only audit log whose entries are hash-chained, so that changing or removing
an entry afterwards is detectable by anyone who replays the chain."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

from nodes.common.storage import DocumentStore

COLLECTION = "audit"
GENESIS = "0" * 64


def entry_hash(entry: dict[str, Any]) -> str:
    content = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class AuditLog:
    def __init__(self, store: DocumentStore):
        self._store = store
        self._lock = threading.Lock()
        last = self._last()
        self._head = (last["seq"], last["hash"]) if last else (0, GENESIS)

    def _last(self) -> dict[str, Any] | None:
        return self._store.last(COLLECTION)

    def append(self, **fields: Any) -> dict[str, Any]:
        with self._lock:
            seq, previous = self._head
            entry = {"seq": seq + 1, "time": time.time(), **fields, "previous": previous}
            entry["hash"] = entry_hash(entry)
            self._store.put(COLLECTION, f"{seq + 1:012d}", entry)
            self._head = (seq + 1, entry["hash"])
            return entry

    def entries(self, limit: int | None = None, **matching: Any) -> list[dict[str, Any]]:
        """The newest `limit` entries whose fields have the `matching` values, oldest first."""
        found = []
        for entry in self._store.iterate(COLLECTION, newest_first=True):
            if all(entry.get(k) == v for k, v in matching.items()):
                found.append(entry)
                if limit is not None and len(found) >= limit:
                    break
        return found[::-1]

    def verify(self) -> dict[str, Any]:
        """Replay the chain; report the first entry that does not fit."""
        previous, count = GENESIS, 0
        for entry in self._store.iterate(COLLECTION):
            count += 1
            if entry.get("previous") != previous or entry_hash(entry) != entry.get("hash"):
                return {"valid": False, "entries": count, "broken_at": entry.get("seq")}
            previous = entry["hash"]
        return {"valid": True, "entries": count}
