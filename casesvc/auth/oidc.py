"""Access tokens of an external OpenID provider (CASESVC_OIDC_ISSUER / _AUDIENCE / _JWKS_URL).

A bearer token goes to the provider path when its header names another algorithm than the
service's own HS256, or its (unverified) `iss` is the provider's. There only RS256 and ES256
are accepted, with a key from the provider's JWKS whose type and algorithm match the header;
`iss`, `aud`, `exp` (required) and `nbf` are checked with CASESVC_OIDC_LEEWAY seconds of clock
skew. So `alg: none`, HS256 signed with the provider's public key, a wrong issuer or audience,
and expired tokens are all 401.

The JWKS is fetched with a timeout, cached for CASESVC_OIDC_JWKS_CACHE_SECONDS, and fetched
again when a token names a `kid` the cache lacks (the provider rotated its keys), but never
more often than every CASESVC_OIDC_JWKS_MIN_REFRESH_SECONDS: tokens with made-up `kid`s cannot
make the service hammer the provider.

Claims (names configurable) map to the principal: role (`casesvc_role`), agency
(`casesvc_agency`) and scopes (`scope`, a space-separated string or a list; scopes the role
may not hold are dropped). An unknown role, an unknown agency, or an agency whose kind is not
the role is 403. A user is provisioned on first sight by (issuer, `sub`); disabling that user
refuses their tokens like any other user's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import jwt
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casesvc.agencies.models import Agency
from casesvc.auth.denylist import denylist_key, revoked_clause
from casesvc.auth.models import EXTERNAL_PASSWORD_HASH, ExternalIdentity, User
from casesvc.common.messages import _
from casesvc.errors import Problem, forbidden
from casesvc.extensions import db
from casesvc.policy import ROLE_SCOPES, STAFF_ROLES, Principal
from casesvc.vocabulary import ROLES

log = logging.getLogger(__name__)

ACCEPTED_ALGORITHMS = ("RS256", "ES256")
KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
MAX_JWKS_BYTES = 1024 * 1024


class ProviderUnavailable(Exception):
    """The JWKS could not be fetched and no keys are cached."""


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


# --- keys ----------------------------------------------------------------------------------------


def fetch_jwks(url: str, timeout: float) -> dict:
    request = urllib.request.Request(  # noqa: S310 (URL from settings)
        url, headers={"Accept": "application/json", "User-Agent": "casesvc"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (URL from settings)
        raw = response.read(MAX_JWKS_BYTES + 1)
    if len(raw) > MAX_JWKS_BYTES:
        raise ValueError("JWKS document too large")
    data = json.loads(raw)
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWKS document")
    return data


class JwksCache:
    """The provider's signing keys, by `kid`. One per app (per worker process)."""

    def __init__(
        self,
        url: str,
        timeout: float,
        max_age: float,
        min_refresh: float,
        clock: Callable[[], float] = time.monotonic,
        fetch: Callable[[str, float], dict] = fetch_jwks,
    ):
        self.url = url
        self.timeout = timeout
        self.max_age = max_age
        self.min_refresh = min_refresh
        self.clock = clock
        self.fetch = fetch
        self.keys: list[jwt.PyJWK] = []
        self.fetched_at: float | None = None  # last successful fetch
        self.attempted_at: float | None = None  # last fetch, successful or not
        self.fetches = 0
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        self.attempted_at = self.clock()
        self.fetches += 1
        try:
            data = self.fetch(self.url, self.timeout)
        except (OSError, ValueError, urllib.error.URLError) as exc:
            log.warning("could not fetch the identity provider's JWKS from %s: %s", self.url, exc.__class__.__name__)
            return
        keys = []
        for entry in data["keys"]:
            if not isinstance(entry, dict) or entry.get("use") not in (None, "sig"):
                continue
            try:
                keys.append(jwt.PyJWK.from_dict(entry))
            except jwt.PyJWTError:
                continue  # a key of a type or algorithm we do not use
        self.keys = keys
        self.fetched_at = self.attempted_at

    def _may_fetch(self) -> bool:
        return self.attempted_at is None or self.clock() - self.attempted_at >= self.min_refresh

    def _find(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        matching = [k for k in self.keys if k.algorithm_name == alg and k.key_type == KEY_TYPES[alg]]
        if kid is None:  # a provider with one key may leave out `kid`; otherwise the kid must match
            return matching[0] if len(matching) == 1 else None
        return next((k for k in matching if k.key_id == kid), None)

    def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        with self._lock:
            stale = self.fetched_at is None or self.clock() - self.fetched_at >= self.max_age
            if stale and self._may_fetch():
                self._refresh()
            if self.fetched_at is None:
                raise ProviderUnavailable()
            key = self._find(kid, alg)
            if key is None and self._may_fetch():  # rotated keys: look once more, at most every min_refresh
                self._refresh()
                key = self._find(kid, alg)
            return key


def jwks_cache(app=None) -> JwksCache:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]  # the proxy's own method
    cache = app.extensions.get("casesvc.jwks")
    if cache is None:
        s = app.config["CASESVC"]
        cache = app.extensions["casesvc.jwks"] = JwksCache(
            s.oidc_jwks_url, s.oidc_jwks_timeout, s.oidc_jwks_cache_seconds, s.oidc_jwks_min_refresh_seconds
        )
    return cache


# --- verifying -----------------------------------------------------------------------------------


def routes_to_provider(token: str) -> bool:
    """Whether a token is meant for the provider path (see the module's docstring)."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    return header.get("alg") != "HS256" or claims.get("iss") == current_app.config["CASESVC"].oidc_issuer


def verify(token: str) -> dict:
    """The token's claims, or a 401 problem (503 when the provider's keys cannot be had)."""
    settings = current_app.config["CASESVC"]
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise _unauthorized(_("The bearer token is invalid.")) from exc
    alg = header.get("alg")
    if alg not in ACCEPTED_ALGORITHMS:
        raise _unauthorized(_("The identity provider's tokens must be signed with RS256 or ES256."))
    kid = header.get("kid")
    try:
        key = jwks_cache().key_for(kid if isinstance(kid, str) else None, alg)
    except ProviderUnavailable as exc:
        raise Problem(
            503,
            "identity-provider-unavailable",
            "Service Unavailable",
            _("The identity provider's signing keys cannot be fetched; try again shortly."),
            headers={"Retry-After": str(settings.oidc_jwks_min_refresh_seconds)},
        ) from exc
    if key is None:
        raise _unauthorized(_("The bearer token is signed with a key the identity provider does not publish."))
    try:
        return jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=settings.oidc_audience,
            issuer=settings.oidc_issuer,
            leeway=settings.oidc_leeway,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized(_("The bearer token has expired.")) from exc
    except jwt.PyJWTError as exc:
        raise _unauthorized(_("The bearer token was refused (signature, issuer, audience or time).")) from exc


def verified_claims_or_none(token: str) -> dict | None:
    """For revocation: None for a token that would be refused anyway; a 503 still propagates
    (RFC 7009 §2.2.1: the client must then assume the token is still valid)."""
    try:
        return verify(token)
    except Problem as exc:
        if exc.status == 503:
            raise
        return None


# --- who it is -----------------------------------------------------------------------------------


def _scopes(raw, role: str) -> frozenset[str]:
    if isinstance(raw, str):
        items = raw.split()
    elif isinstance(raw, list):
        items = [s for s in raw if isinstance(s, str)]
    else:
        items = []
    return frozenset(items) & ROLE_SCOPES[role]


def _role_and_agency(claims: dict) -> tuple[str, str | None]:
    settings = current_app.config["CASESVC"]
    role = claims.get(settings.oidc_role_claim)
    agency = claims.get(settings.oidc_agency_claim) or None
    if not isinstance(role, str) or role not in ROLES:
        raise forbidden(
            _("The token's %(claim)s claim names no role of this service.", claim=settings.oidc_role_claim),
            "unknown-role",
        )
    if agency is not None and not isinstance(agency, str):
        raise forbidden(
            _("The token's %(claim)s claim is not an agency code.", claim=settings.oidc_agency_claim), "unknown-agency"
        )
    if role in STAFF_ROLES and agency is None:
        raise forbidden(
            _("A %(role)s token needs the %(claim)s claim.", role=role, claim=settings.oidc_agency_claim),
            "unknown-agency",
        )
    if role not in STAFF_ROLES and agency is not None:
        raise forbidden(_("A %(role)s belongs to no agency.", role=role), "unknown-agency")
    return role, agency


def _username(session: Session, issuer: str, subject: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9._@-]{1,120}", subject):
        base = f"oidc:{subject}"
    else:
        base = "oidc:" + hashlib.sha256(subject.encode()).hexdigest()[:32]
    if session.scalar(select(User.id).where(User.username == base)) is None:
        return base
    return f"{base}~{hashlib.sha256(issuer.encode()).hexdigest()[:8]}"


def _provision(issuer: str, subject: str, role: str, agency: str | None) -> None:
    """The user and its identity, made together or not at all: in a transaction of their own, on
    a connection of their own (the request may be a read, whose connection is in autocommit, where
    the user would stay without its identity if the identity's insert failed)."""
    with Session(db.engine) as session:
        try:
            with session.begin():
                user = User(
                    username=_username(session, issuer, subject),
                    password_hash=EXTERNAL_PASSWORD_HASH,
                    role=role,
                    agency_code=agency,
                    active=True,
                )
                session.add(user)
                session.flush()
                user_id = user.id
                session.add(ExternalIdentity(issuer=issuer, subject=subject, user_id=user_id))
        except IntegrityError:  # the same user's first two requests at once: the other one won
            return
    log.info("provisioned user %s from the identity provider", user_id)


def provider_principal(token: str) -> Principal:
    """Verify a provider's token and build the principal (one query once the user exists)."""
    claims = verify(token)
    role, agency = _role_and_agency(claims)
    issuer, subject = claims["iss"], str(claims["sub"])
    if len(subject) > 255:
        raise _unauthorized(_("The token's sub claim is too long."))
    query = (
        select(
            ExternalIdentity.user_id,
            User.active,
            User.role,
            User.agency_code,
            User.username,
            Agency.kind,
            Agency.municipalities,
            revoked_clause(denylist_key(claims, token)).label("revoked"),
        )
        .select_from(ExternalIdentity)
        .join(User, User.id == ExternalIdentity.user_id)
        .outerjoin(Agency, Agency.code == agency)
        .where(ExternalIdentity.issuer == issuer, ExternalIdentity.subject == subject)
    )
    row = db.session.execute(query).first()
    if row is None:
        known = db.session.execute(select(Agency.kind).where(Agency.code == agency)).first() if agency else None
        if agency is not None and (known is None or known.kind != role):
            raise forbidden(_("No agency %(code)r of kind %(kind)r.", code=agency, kind=role), "unknown-agency")
        _provision(issuer, subject, role, agency)
        row = db.session.execute(query).first()
        if row is None:
            raise Problem(
                503,
                "unavailable",
                "Service Unavailable",
                _("The user could not be provisioned; try again."),
                headers={"Retry-After": "1"},
            )
    if row.revoked:
        raise _unauthorized(_("The bearer token has been revoked."))
    if not row.active:
        raise _unauthorized(_("The token's user is disabled."))
    if agency is not None and row.kind != role:
        raise forbidden(_("No agency %(code)r of kind %(kind)r.", code=agency, kind=role), "unknown-agency")
    if (row.role, row.agency_code) != (role, agency):  # the provider moved them: follow it
        user = db.session.get_one(User, row.user_id)
        user.role, user.agency_code = role, agency
        db.session.commit()
    return Principal(
        subject=row.user_id,
        role=role,
        agency=agency,
        municipalities=frozenset(row.municipalities or ()) if agency else frozenset(),
        scopes=_scopes(claims.get(current_app.config["CASESVC"].oidc_scope_claim), role),
        username=row.username,
    )


def local_user(claims: dict) -> User | None:
    identity = db.session.get(ExternalIdentity, (claims.get("iss"), str(claims.get("sub"))))
    return db.session.get(User, identity.user_id) if identity else None
