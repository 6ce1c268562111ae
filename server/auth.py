"""API keys: `Authorization: Bearer KEY` against `PROVER_API_KEYS`.

A key is known to the rest of the service only by its identity, a short hash, so rate-limit
buckets, idempotency scopes and logs never hold the secret itself; the identity is stable across
restarts and key reorderings, which idempotency records in Redis rely on.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence


def key_identity(key: str) -> str:
    return "key:" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


class Authenticator:
    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = [(k.encode("utf-8", "surrogateescape"), key_identity(k)) for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def identify(self, authorization: bytes | None) -> str | None:
        """The identity of the key in a raw Authorization header value, or None if it is missing,
        malformed or unknown. Every key is compared in constant time, and all of them always are,
        so the time taken says nothing about which key came close."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(b" ")
        given = token.strip()
        if scheme.lower() != b"bearer" or not given:
            return None
        found: str | None = None
        for secret, identity in self._keys:
            if hmac.compare_digest(given, secret) and found is None:
                found = identity
        return found
