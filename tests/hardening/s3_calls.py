"""Count the S3 operations a client makes, with botocore's own event hooks (nothing is patched)."""
from __future__ import annotations

from collections import Counter


class S3CallCounter:
    """``with S3CallCounter(store) as calls: ...`` then ``calls.count("GetObject", key)``."""

    def __init__(self, store):
        self.events = store.client.meta.events
        self.calls: list[tuple[str, str]] = []

    def _record(self, params, model, **_):
        self.calls.append((model.name, params.get("Key") or params.get("Prefix") or ""))

    def __enter__(self) -> "S3CallCounter":
        self.events.register("provide-client-params.s3.*", self._record, unique_id="s3-call-counter")
        return self

    def __exit__(self, *exc) -> None:
        self.events.unregister("provide-client-params.s3.*", unique_id="s3-call-counter")

    def count(self, operation: str | None = None, key_contains: str = "") -> int:
        return sum(1 for name, key in self.calls if (operation is None or name == operation) and key_contains in key)

    def by_operation(self) -> Counter:
        return Counter(name for name, _ in self.calls)
