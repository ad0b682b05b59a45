"""Event ids that are a pure function of a business key.

A producer that may run twice for one input (a retried Temporal activity, a redelivered message)
derives its event's id from what it is doing — workflow + step, service + business key — so the
second run re-sends the same event and consumers deduplicate it. The id keeps the UUIDv4 shape the
envelope requires.
"""

from __future__ import annotations

import hashlib
import uuid

__all__ = ["stable_event_id"]


def stable_event_id(*parts: str) -> uuid.UUID:
    """A UUIDv4-shaped id derived from `parts` (joined with the unit separator) by SHA-256."""
    digest = bytearray(hashlib.sha256("\x1f".join(parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40  # version 4
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return uuid.UUID(bytes=bytes(digest))
