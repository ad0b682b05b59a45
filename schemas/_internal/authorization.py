"""Who may say what: a verified signature must come from the event type's catalog publisher.

A valid signature only proves that someone holding a key signed the bytes. Each key belongs to one
service, so the check here closes the gap: the signer must be the service the catalog names as the
type's publisher, and the envelope's `producer` (inside the signed value, never a header) must be
that same service. Anything else is an `UnauthorizedSignerError` in production mode and a warning in
development mode.
"""

from __future__ import annotations

import logging

from schemas._internal.catalog import Catalog
from schemas._internal.envelope import Envelope
from schemas._internal.errors import UnauthorizedSignerError
from schemas._internal.services import Service
from schemas._internal.signing import SignatureCheck, SigningMode

__all__ = ["SignerPolicy", "producer_name"]

log = logging.getLogger("schemas.signing")


def producer_name(service: Service | str) -> str:
    """The envelope `producer` of a service's events (``billing`` → ``billing-service``)."""
    return f"{Service(service).value}-service"


class SignerPolicy:
    """Checks a decoded envelope against the signer its signature resolved to."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._producers = {service: producer_name(service) for service in Service}

    def violation(self, envelope: Envelope, check: SignatureCheck) -> tuple[str, str] | None:
        """(field, reason) when the signer may not have published `envelope`; None when it may or when
        the signature did not verify (the signature policy has decided about that already)."""
        signer = check.service
        if signer is None or not check.ok:
            return None
        publisher = self._catalog.require(envelope.event_type).publisher
        if publisher is not signer:
            return ("eventType", f"{envelope.event_type} is published by {publisher.value}, but the record "
                                 f"is signed by {signer.value} (key {check.key_id})")
        if envelope.producer != self._producers[signer]:
            return ("producer", f"producer {envelope.producer!r} disagrees with the signer {signer.value} "
                                f"(key {check.key_id}), which publishes as {self._producers[signer]!r}")
        return None

    def enforce(self, envelope: Envelope, check: SignatureCheck, mode: SigningMode | str, *,
                context: str = "", logger: logging.Logger | None = None) -> None:
        """Raise `UnauthorizedSignerError` (PRODUCTION) or log a warning (DEVELOPMENT) on a violation."""
        found = self.violation(envelope, check)
        if found is None:
            return
        field, reason = found
        where = f" ({context})" if context else ""
        if SigningMode(mode) is SigningMode.PRODUCTION:
            raise UnauthorizedSignerError(reason + where, field=field, check=check)
        (logger or log).warning("processing a record its signer may not publish, in development mode: %s%s",
                                reason, where)
