"""The rules of webhooks, without I/O: what a webhook may be, which notices it receives, how a
delivery is signed, and how long to wait before trying one again.

The HTTP bodies (:mod:`baton.wire.api`) state the same limits as patterns and bounds, and the
store checks them again (:func:`webhook_problems`), so a request the OpenAPI document allows is
one the store takes.

**The signature.** Each POST carries ``Baton-Timestamp`` (Unix seconds when it was sent) and
``Baton-Signature: sha256=<hex>``, the HMAC-SHA256 under the webhook's secret of the timestamp,
a dot, and the body's bytes exactly as sent. Signing the timestamp with the body lets a receiver
refuse a replayed request: :func:`verify` takes a signature only within ``tolerance_s`` of its
own clock.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Collection, Sequence

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
# http(s) only, no credentials in the authority (they belong in the secret), ASCII only (an
# international host name in its xn-- form). The same expression is the API's pattern.
URL_PATTERN = r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[!-~]*)?$"
MAX_URL_CHARS = 2048
SECRET_PATTERN = r"^[!-~]{16,256}$"  # printable ASCII without spaces; at least 16 characters
MIN_SECRET_CHARS, MAX_SECRET_CHARS = 16, 256
EVENT_TYPE_PATTERN = r"^[^\x00]{1,200}$"
MAX_EVENT_TYPES = 100
FINGERPRINT_CHARS = 4  # of the secret's SHA-256: tells two secrets apart, gives nothing away
SIGNATURE_PREFIX = "sha256="
TOLERANCE_S = 300  # how far a receiver should trust a timestamp from its own clock (verify)

# Retries: 5 s doubling to 10 minutes, each pause scaled by a random factor in [0.8, 1.2], so
# deliveries refused together do not all come back at once.
RETRY_FIRST_S = 5.0
RETRY_MAX_S = 600.0
RETRY_JITTER = 0.2

_NAME, _URL, _SECRET, _TYPE = (re.compile(p) for p in (NAME_PATTERN, URL_PATTERN, SECRET_PATTERN, EVENT_TYPE_PATTERN))


def webhook_problems(
    name: str, url: str, secret: str, kinds: Sequence[str], event_types: Sequence[str] | None, known: Collection[str]
) -> list[str]:
    """Everything wrong with a webhook's definition (none: it may be stored). Never quotes the
    secret."""
    problems = []
    if not _NAME.fullmatch(name):
        problems.append(f"name {name[:100]!r}: 1 to 100 letters, digits, '_', '.', '-', not starting with '_.-'")
    if len(url) > MAX_URL_CHARS or not _URL.fullmatch(url):
        problems.append(f"url: an http:// or https:// URL of at most {MAX_URL_CHARS} ASCII characters, "
                        "without user:password@ (put credentials in the secret)")  # fmt: skip
    if not _SECRET.fullmatch(secret):
        problems.append(f"secret: {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} printable ASCII characters, no spaces")
    problems += _kinds_problems(kinds, known)
    problems += _types_problems(event_types)
    return problems


def _kinds_problems(kinds: Sequence[str], known: Collection[str]) -> list[str]:
    if not kinds:
        return [f"kinds: at least one of {', '.join(known)}"]
    unknown = sorted(set(kinds) - set(known))
    return [f"kinds: unknown {unknown} (known: {', '.join(known)})"] if unknown else []


def _types_problems(event_types: Sequence[str] | None) -> list[str]:
    if event_types is None:
        return []
    if not 1 <= len(event_types) <= MAX_EVENT_TYPES:
        return [f"event types: 1 to {MAX_EVENT_TYPES} of them (none given: every type)"]
    bad = [t for t in event_types if not _TYPE.fullmatch(t)]
    return [f"event types: {bad[0][:100]!r} is not 1 to 200 characters without NUL"] if bad else []


def receives(kinds: Collection[str], event_types: Collection[str] | None, kind: str, event_type: str | None) -> bool:
    """Whether a webhook of ``kinds`` (and, when not None, ``event_types``) receives a notice of
    ``kind`` about ``event_type`` (None: a notice tied to no event type)."""
    if kind not in kinds:
        return False
    return event_types is None or (event_type is not None and event_type in event_types)


def fingerprint(secret: str) -> str:
    """A few hex digits of the secret's SHA-256: enough to see which secret is set, too few to
    confirm a guess at it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:FINGERPRINT_CHARS]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Baton-Signature`` header of ``body`` sent at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify(
    secret: str, timestamp: str, signature: str, body: bytes, now: float, tolerance_s: float = TOLERANCE_S
) -> bool:
    """What a receiver checks: the signature is the body's under ``secret`` at ``timestamp``,
    and ``timestamp`` is within ``tolerance_s`` of ``now`` (an older request may be a replay)."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body).encode(), signature.encode())


def retry_delay_s(attempt: int, rand: float) -> float:
    """The pause after failed attempt ``attempt`` (1, 2, ...): :data:`RETRY_FIRST_S` doubling to
    :data:`RETRY_MAX_S`, scaled by ``1 ± RETRY_JITTER`` as ``rand`` (in [0, 1)) says."""
    doublings = min(max(attempt - 1, 0), 32)  # 2**32 * 5 s is past any cap: no float overflow
    base = min(RETRY_FIRST_S * 2.0**doublings, RETRY_MAX_S)
    return base * (1 - RETRY_JITTER + 2 * RETRY_JITTER * rand)
