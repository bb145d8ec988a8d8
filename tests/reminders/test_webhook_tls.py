"""Webhooks over HTTPS to a pinned address (casesvc/reminders/webhooks.py: `vet`, `send_all`,
`_post`, `_HTTPS`), against a real TLS receiver on 127.0.0.1: the connection goes to the address
vetted, while the Host header, the SNI and the certificate check all use the URL's name; a
certificate for another name, a self-signed one or one from a CA the client does not trust is
refused before anything is sent; a redirect is an answer, not an instruction.

The receiver's name, hooks.example.test, resolves nowhere (.test is reserved): a request can only
arrive through the pinned address. The certificates are made here, under a test CA; the client
trusts that CA (and nothing else) through `ssl._create_default_https_context`, the hook by which
http.client makes its default context (PEP 476), so the context in use is otherwise the
standard verifying one (CERT_REQUIRED, check_hostname)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from casesvc.common.timeutil import utcnow
from casesvc.reminders import webhooks
from tests.reminders.test_webhooks import SECRET, _QuietServer, attempts, hook, manual, recording_handler, run_worker

HOST = "hooks.example.test"
PINNED = "127.0.0.1"
# why a certificate was refused, as the attempt records it for the receiver's administrator
WRONG_NAME = "certificate refused: Hostname mismatch, certificate is not valid for 'hooks.example.test'."
UNTRUSTED = "certificate refused: unable to get local issuer certificate"
SELF_SIGNED = "certificate refused: self-signed certificate"


# --- a small PKI, made for the test ------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA the client is made to trust
    good: tuple[Path, Path]  # (certificate, key): HOST, signed by `ca`
    other_name: tuple[Path, Path]  # other.example.test, signed by `ca`
    self_signed: tuple[Path, Path]  # HOST, signed by itself
    rogue_ca: tuple[Path, Path]  # HOST, signed by another CA that nobody trusts


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key, issuer: str, issuer_key, *, ca: bool, dns: str | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(directory: Path, stem: str, certificate: x509.Certificate, key=None) -> tuple[Path, Path | None]:
    cert_file = directory / f"{stem}.crt"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    if key is None:
        return cert_file, None
    key_file = directory / f"{stem}.key"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def pki(tmp_path) -> Pki:
    ca_key, rogue_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("casesvc test CA", ca_key, "casesvc test CA", ca_key, ca=True)
    ca_file, _ = _write(tmp_path, "ca", ca)

    def leaf(stem, dns, issuer="casesvc test CA", issuer_key=ca_key):
        key = ec.generate_private_key(ec.SECP256R1())
        if issuer_key is None:  # self-signed
            issuer, issuer_key = dns, key
        return _write(tmp_path, stem, _certificate(dns, key, issuer, issuer_key, ca=False, dns=dns), key)

    return Pki(
        ca=ca_file,
        good=leaf("good", HOST),
        other_name=leaf("other", "other.example.test"),
        self_signed=leaf("self", HOST, issuer_key=None),
        rogue_ca=leaf("rogue", HOST, issuer="rogue CA", issuer_key=rogue_key),
    )


@pytest.fixture
def trust_test_ca(monkeypatch, pki):
    """http.client's default context, with the test CA as its only trust anchor."""
    create_default_context = ssl.create_default_context
    monkeypatch.setattr(ssl, "_create_default_https_context", lambda: create_default_context(cafile=str(pki.ca)))


# --- a TLS receiver on 127.0.0.1 -----------------------------------------------------------------


class TLSReceiver:
    """As test_webhooks.Receiver, over TLS with the given certificate; it also records the SNI
    each client sent and each handshake that failed."""

    def __init__(self, cert: tuple[Path, Path]):
        self.requests: list[dict] = []
        self.sni: list[str | None] = []
        self.handshake_errors: list[str] = []
        self.status = 200
        self.location = None
        self.gate = None
        self.lock = threading.Lock()
        self.handshakes_done = threading.Semaphore(0)
        receiver = self

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*cert)

        def record_sni(ssl_socket, server_name, ctx):
            with receiver.lock:
                receiver.sni.append(server_name)

        context.sni_callback = record_sni

        class Server(_QuietServer):
            def finish_request(self, request, client_address):
                # the handshake in the request's own thread, so that a failed one is seen here
                request.settimeout(10)
                try:
                    tls = context.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    with receiver.lock:
                        receiver.handshake_errors.append(str(exc))
                    return
                finally:
                    receiver.handshakes_done.release()
                try:
                    super().finish_request(tls, client_address)
                finally:
                    tls.close()

        self.server = Server((PINNED, 0), recording_handler(self))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}/casesvc/hook"

    def wait_for_handshake(self, seconds: float = 5.0) -> None:
        """The server's side of a handshake may end just after the client has given up."""
        assert self.handshakes_done.acquire(timeout=seconds), "no TLS handshake reached the receiver"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls_receiver(pki):
    """tls_receiver(cert=pki.good) starts a receiver; all are closed after the test."""
    started = []

    def start(cert=None) -> TLSReceiver:
        receiver = TLSReceiver(cert or pki.good)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


@pytest.fixture
def loopback_allowed(monkeypatch):
    """`vet` in production refuses loopback, and a test receiver can only be on loopback: let
    127.0.0.1 (only it) through, so that the rest of `vet` runs as in production."""
    blocked = webhooks._blocked_address
    monkeypatch.setattr(webhooks, "_blocked_address", lambda address: address != PINNED and blocked(address))


def pinned_vetting(lookups: list):
    """`vet` as the worker calls it in production, with HOST resolving to 127.0.0.1 (recorded)."""

    def resolve(host, port):
        lookups.append((host, port))
        return [PINNED] if host == HOST else []

    return lambda url: webhooks.vet(url, True, resolve)


BODY = b'{"event":"reminder.due","reminder_id":"r-1"}'
HEADERS = {"Content-Type": "application/json", "User-Agent": webhooks.USER_AGENT}


# --- 1. the right certificate, pinned address, host name kept ----------------------------------------


def test_https_to_the_pinned_address_keeps_the_host_name_for_host_sni_and_certificate(
    tls_receiver, trust_test_ca, loopback_allowed
):
    receiver = tls_receiver()
    lookups = []
    [result] = webhooks.send_all([(receiver.url + "?x=1", BODY, HEADERS)], 5.0, 1, vetting=pinned_vetting(lookups))
    assert result == webhooks.Attempt(True, 200, None)
    assert lookups == [(HOST, receiver.port)]  # resolved once, by `vet`; the connection went to what it said
    assert receiver.sni == [HOST]  # the SNI is the URL's name, not the address connected to
    assert receiver.handshake_errors == []
    [request] = receiver.requests
    assert request["path"] == "/casesvc/hook?x=1"
    assert request["headers"]["Host"] == f"{HOST}:{receiver.port}"
    assert request["body"] == BODY


def test_without_the_pinned_address_the_name_is_not_reached(tls_receiver, trust_test_ca):
    """The control: `send` resolves the name itself, and HOST resolves nowhere, so what arrived
    above came through the pin."""
    receiver = tls_receiver()
    result = webhooks.send(receiver.url, BODY, HEADERS, 5.0)
    assert not result.ok and result.status_code is None
    assert result.error.startswith("connection failed: ") or result.error == "timeout"
    assert (receiver.requests, receiver.sni) == ([], [])


# --- 2. any other certificate is refused, and nothing is sent ------------------------------------------


@pytest.mark.parametrize(
    "cert, reason", [("other_name", WRONG_NAME), ("self_signed", SELF_SIGNED), ("rogue_ca", UNTRUSTED)]
)
def test_a_certificate_not_valid_for_the_host_name_is_refused_and_nothing_is_sent(
    pki, tls_receiver, trust_test_ca, loopback_allowed, cert, reason
):
    """other_name: signed by the trusted CA, for other.example.test; self_signed: for the right
    name, signed by itself; rogue_ca: for the right name, from a CA the client does not trust."""
    receiver = tls_receiver(getattr(pki, cert))
    [result] = webhooks.send_all([(receiver.url, BODY, HEADERS)], 5.0, 1, vetting=pinned_vetting([]))
    assert result == webhooks.Attempt(False, None, reason)
    receiver.wait_for_handshake()
    assert receiver.sni == [HOST]  # the client did reach the receiver, and named the right host
    assert len(receiver.handshake_errors) == 1  # ... and broke off the handshake
    assert receiver.requests == []  # not a byte of the request was sent


def test_the_test_ca_is_trusted_only_where_the_test_says_so(tls_receiver, loopback_allowed):
    """Without `trust_test_ca`, the right certificate is refused too: the trust above is the
    test's doing, and the default context really checks the chain."""
    receiver = tls_receiver()
    [result] = webhooks.send_all([(receiver.url, BODY, HEADERS)], 5.0, 1, vetting=pinned_vetting([]))
    assert result == webhooks.Attempt(False, None, UNTRUSTED)
    receiver.wait_for_handshake()
    assert receiver.requests == []


# --- 3. a redirect is an answer ------------------------------------------------------------------------


def test_a_redirect_over_https_is_a_failed_attempt_and_is_not_followed(tls_receiver, trust_test_ca, loopback_allowed):
    receiver = tls_receiver()
    # to the same receiver: were it followed, a second request would be seen there
    receiver.status, receiver.location = 302, f"https://{HOST}:{receiver.port}/elsewhere"
    [result] = webhooks.send_all([(receiver.url, BODY, HEADERS)], 5.0, 1, vetting=pinned_vetting([]))
    assert result == webhooks.Attempt(False, 302, "HTTP 302")
    time.sleep(0.2)  # room for a second request, were one coming
    assert [r["path"] for r in receiver.requests] == ["/casesvc/hook"]


# --- the worker, in production, end to end --------------------------------------------------------------


@pytest.fixture
def host_resolves_to_loopback(monkeypatch):
    """The system resolver, with HOST answering 127.0.0.1; lookups of HOST are recorded."""
    lookups = []
    getaddrinfo = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host == HOST:
            lookups.append((host, port))
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (PINNED, port))]
        return getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return lookups


def _due_reminder_for(world, receiver):
    hook(world, receiver)  # set outside production: the URL is only checked again at each attempt
    case = world.case(participants=("health",))
    return manual(world, case, utcnow() - dt.timedelta(minutes=1))


def test_the_worker_in_production_delivers_over_tls_to_the_vetted_address(
    world, app, tls_receiver, trust_test_ca, loopback_allowed, host_resolves_to_loopback
):
    receiver = tls_receiver()
    reminder = _due_reminder_for(world, receiver)
    assert run_worker(app, utcnow(), env="production")["deliveries"]["delivered"] == 1
    assert host_resolves_to_loopback == [(HOST, receiver.port)]  # once, in `vet`; not again to connect
    assert receiver.sni == [HOST]
    [request] = receiver.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["host"] == f"{HOST}:{receiver.port}"
    assert json.loads(request["body"])["reminder_id"] == reminder["id"]
    assert webhooks.verify(
        SECRET, headers["x-casesvc-timestamp"], headers["x-casesvc-signature"], request["body"], now=time.time()
    )
    [item] = attempts(world)
    assert (item["outcome"], item["status_code"], item["error"]) == ("delivered", 200, None)


def test_the_worker_records_a_refused_certificate_and_retries(
    world, app, pki, tls_receiver, trust_test_ca, loopback_allowed, host_resolves_to_loopback
):
    receiver = tls_receiver(pki.other_name)
    _due_reminder_for(world, receiver)
    assert run_worker(app, utcnow(), env="production")["deliveries"]["retrying"] == 1
    receiver.wait_for_handshake()
    assert receiver.requests == []
    [item] = attempts(world)
    assert (item["outcome"], item["status_code"], item["error"]) == ("retrying", None, WRONG_NAME)
