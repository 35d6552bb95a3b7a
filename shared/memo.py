"""A bounded memo of what was computed from some bytes, keyed by their digest: the
de-identification spans of a text (``shared.deidentify``), the parts of a .docx already found
safe (``shared.docx_safety``).

The digest is keyed by a secret drawn when the process starts: the memo holds neither the
bytes nor a digest that could be compared with anything outside this process, so a text's
memo entry cannot be confirmed by guessing the text.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from typing import Generic, TypeVar

Value = TypeVar("Value")


class DigestMemo(Generic[Value]):
    """The last ``size`` values, by keyed digest of their input; thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._key = os.urandom(32)
        self._lock = threading.Lock()
        self._values: OrderedDict[bytes, Value] = OrderedDict()

    def digest(self, data: bytes) -> bytes:
        return hashlib.blake2b(data, key=self._key, digest_size=16).digest()

    def get(self, digest: bytes) -> Value | None:
        with self._lock:
            value = self._values.get(digest)
            if value is not None:
                self._values.move_to_end(digest)
            return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def put(self, digest: bytes, value: Value) -> None:
        with self._lock:
            self._values[digest] = value
            self._values.move_to_end(digest)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
