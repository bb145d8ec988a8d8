"""Webhook delivery: the signature, the URL check, one HTTP attempt under a hard deadline, and
the retry schedule. Pure where it can be; `send` is the only function that does I/O.

What is signed: the exact request body, with HMAC-SHA256 under the agency's secret, sent as
`X-Casesvc-Signature: sha256=<hex>` (README "Reminders and webhooks"). The body carries the send time as `timestamp`
(decimal Unix seconds), repeated in `X-Casesvc-Timestamp`, so the signature covers it: a receiver
recomputes the HMAC over the raw body it received, checks the header equals the body's
`timestamp`, and refuses one more than a few minutes old (replay protection, as Stripe and
GitHub do).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from casesvc.common.messages import _
from casesvc.common.timeutil import rfc3339

SIGNATURE_HEADER = "X-Casesvc-Signature"
TIMESTAMP_HEADER = "X-Casesvc-Timestamp"
DELIVERY_HEADER = "X-Casesvc-Delivery"
EVENT_HEADER = "X-Casesvc-Event"
EVENT = "reminder.due"
USER_AGENT = "casesvc-webhooks/1"
MIN_SECRET_LENGTH = 1  # the contract sets no minimum; README recommends a long random secret
MAX_URL_LENGTH = 2000
DEFAULT_TOLERANCE_SECONDS = 300


# --- the payload and its signature ----------------------------------------------------------


def payload(reminder_id: str, case_id: str, kind: str, due_at: datetime) -> str:
    """Ids only: never names, text or content (the body may pass through logs and queues)."""
    return json.dumps(
        {"event": EVENT, "reminder_id": reminder_id, "case_id": case_id, "kind": kind, "due_at": rfc3339(due_at)},
        separators=(",", ":"),
    )


def stamped(body: bytes, timestamp: int) -> bytes:
    """The stored payload with the send time in it, so that the body's signature covers it."""
    return json.dumps({**json.loads(body), "timestamp": timestamp}, separators=(",", ":")).encode()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp_header: str,
    signature_header: str,
    body: bytes,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does (the README shows the same in a few lines)."""
    if not hmac.compare_digest(sign(secret, body), signature_header or ""):
        return False
    try:
        timestamp = json.loads(body)["timestamp"]
    except (ValueError, KeyError, TypeError):
        return False
    if not isinstance(timestamp, int) or str(timestamp) != timestamp_header:
        return False
    return abs(now - timestamp) <= tolerance


def signed_request(secret: str, stored_body: bytes, delivery_id: str, timestamp: int) -> tuple[bytes, dict[str, str]]:
    """The body as sent (stamped) and its headers."""
    body = stamped(stored_body, timestamp)
    return body, {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: EVENT,
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, body),
    }


# --- the retry schedule ---------------------------------------------------------------------


def backoff_seconds(attempts: int, base: int, cap: int) -> int:
    """After the n-th failed attempt, wait base·2^(n-1) seconds, at most `cap`."""
    return min(cap, base * 2 ** max(0, attempts - 1))


def outcome_after(success: bool, attempts: int, max_attempts: int) -> str:
    """`delivered`, `retrying` (another attempt is scheduled) or `failed` (no more attempts)."""
    if success:
        return "delivered"
    return "retrying" if attempts < max_attempts else "failed"


# --- which URLs may be targets --------------------------------------------------------------


def _blocked_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _resolve(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})


def url_problem(url: str, production: bool, resolve=_resolve) -> str | None:
    """Why `url` cannot be a webhook target, or None (see `vet`)."""
    return vet(url, production, resolve)[0]


def vet(url: str, production: bool, resolve=_resolve) -> tuple[str | None, str | None]:
    """(why `url` cannot be a webhook target or None, the address to connect to or None).

    Only http(s), a host, no credentials in the URL; in production the host must not be (or
    resolve to) a loopback, private, link-local or otherwise non-public address (no requests
    into the service's own network). In production the name is resolved here once, and the
    attempt connects to the address vetted here: a name that resolves anew to an inside
    address between the check and the connection (DNS rebinding) cannot redirect it."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        return _("Must be an http(s) URL of at most %(most)s characters.", most=MAX_URL_LENGTH), None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return _("Not a valid URL."), None
    if parts.scheme not in ("http", "https"):
        return _("Only http and https URLs are accepted."), None
    if not parts.hostname:
        return _("The URL needs a host."), None
    if parts.username is not None or parts.password is not None:
        return _("Credentials do not belong in the URL; the signature authenticates the sender."), None
    if parts.fragment:
        return _("A webhook URL has no fragment."), None
    if not production:
        return None, None
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        return _("Loopback addresses are refused as webhook targets in production."), None
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolve(host, port or (443 if parts.scheme == "https" else 80))
        except (OSError, UnicodeError):
            return _("The host name does not resolve."), None
    if not addresses or any(_blocked_address(a) for a in addresses):
        return _("Loopback, private and other non-public addresses are refused as webhook targets in production."), None
    return None, addresses[0]


# --- one attempt ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None
    error: str | None


class _Pinned(http.client.HTTPConnection):
    """http.client, which follows no redirect (a redirect is an answer, not an instruction) and
    uses no proxy; with `address`, it connects there instead of resolving the host again."""

    def __init__(self, host, port=None, *, address: str | None = None, **kwargs):
        super().__init__(host, port, **kwargs)
        self.address = address

    def _pinned_socket(self) -> socket.socket:
        return socket.create_connection((self.address, self.port), self.timeout)


class _HTTP(_Pinned):
    def connect(self):
        if self.address is None:
            return super().connect()
        self.sock = self._pinned_socket()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return None


class _HTTPS(_Pinned, http.client.HTTPSConnection):
    """The certificate is still checked against the host name (SNI too)."""

    def connect(self):
        if self.address is None:
            return super().connect()
        context = self._context  # type: ignore[attr-defined]  # http.client's own, not in its stubs
        self.sock = context.wrap_socket(self._pinned_socket(), server_hostname=self.host)
        return None


MAX_RESPONSE_BYTES = 4096


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float, address: str | None = None) -> Attempt:
    parts = urlsplit(url)
    connection = (_HTTPS if parts.scheme == "https" else _HTTP)(
        parts.hostname, parts.port, address=address, timeout=timeout
    )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)  # the answer's content is not used, nor kept
        status = response.status
    except TimeoutError:
        return Attempt(False, None, "timeout")
    except ssl.SSLCertVerificationError as exc:  # the receiver's administrator needs the reason
        return Attempt(False, None, f"certificate refused: {exc.verify_message}"[:200])
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Attempt(False, None, f"connection failed: {type(exc).__name__}")
    finally:
        connection.close()
    if 200 <= status < 300:
        return Attempt(True, status, None)
    return Attempt(False, status, f"HTTP {status}")


def send(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
    """POST under a hard deadline of `timeout` seconds in all (see send_all)."""
    return send_all([(url, body, headers)], timeout, 1)[0]


def send_all(
    jobs: list[tuple[str, bytes, dict[str, str]]], timeout: float, concurrency: int, vetting=None
) -> list[Attempt]:
    """Several deliveries at once, at most `concurrency` in flight, each under a hard deadline of
    `timeout` seconds in all: a receiver that accepts the connection and then trickles its answer
    cannot hold the worker longer. Requests run in daemon threads; when the deadline passes the
    worker records a timeout and moves on (the thread ends with its socket timeout).
    `vetting(url)` answers as `vet`: a target may be refused before anything is sent, and the
    attempt connects to the address it vetted."""
    results: list[Attempt | None] = [None] * len(jobs)

    def run(index: int) -> None:
        url, body, headers = jobs[index]
        refused, address = vetting(url) if vetting is not None else (None, None)
        if refused:
            results[index] = Attempt(False, None, f"refused: {refused}"[:200])
            return
        results[index] = _post(url, body, headers, timeout, address)

    for start in range(0, len(jobs), max(1, concurrency)):
        threads = [
            threading.Thread(target=run, args=(i,), name="casesvc-webhook", daemon=True)
            for i in range(start, min(start + max(1, concurrency), len(jobs)))
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
    return [r if r is not None else Attempt(False, None, "timeout") for r in results]
