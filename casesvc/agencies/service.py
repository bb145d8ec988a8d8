"""Agencies and staff users: created by operators (CLI) and admins."""
from __future__ import annotations

import re

from sqlalchemy import select

from casesvc.agencies.models import Agency
from casesvc.auth.models import User
from casesvc.auth.passwords import hash_password
from casesvc.extensions import db
from casesvc.policy import STAFF_ROLES
from casesvc.vocabulary import AGENCY_KINDS, ROLES

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{1,31}$")
MIN_PASSWORD_LENGTH = 12


class InvalidInput(ValueError):
    """Bad operator input; the message is one line for the CLI."""


def parse_municipalities(raw: str) -> list[str]:
    items = [m.strip() for m in raw.split(",") if m.strip()]
    if not items or any(not re.fullmatch(r"\d{4}", m) for m in items):
        raise InvalidInput("--municipality takes 4-digit municipality numbers, comma-separated (e.g. 0301,4601)")
    return sorted(set(items))


def create_agency(code: str, kind: str, name: str, municipalities: list[str]) -> Agency:
    if not CODE_PATTERN.match(code):
        raise InvalidInput("agency code must be 2-32 characters: lowercase letters, digits, '-' or '_'")
    if kind not in AGENCY_KINDS:
        raise InvalidInput(f"--kind must be one of: {', '.join(AGENCY_KINDS)}")
    if not name.strip():
        raise InvalidInput("--name must not be empty")
    if db.session.get(Agency, code) is not None:
        raise InvalidInput(f"agency {code!r} already exists")
    agency = Agency(code=code, kind=kind, name=name.strip(), municipalities=municipalities)
    db.session.add(agency)
    db.session.flush()
    return agency


def check_role_and_agency(role: str, agency_code: str | None, what: str) -> None:
    """A staff role belongs to an agency of its own kind; admin and auditor to none.
    `what` names the holder in messages ("user", "client")."""
    if role not in ROLES:
        raise InvalidInput(f"--role must be one of: {', '.join(ROLES)}")
    if role in STAFF_ROLES:
        if not agency_code:
            raise InvalidInput(f"a {role} {what} needs --agency")
        agency = db.session.get(Agency, agency_code)
        if agency is None:
            raise InvalidInput(f"no agency {agency_code!r}")
        if agency.kind != role:
            raise InvalidInput(f"role {role!r} does not match agency {agency_code!r} of kind {agency.kind!r}")
    elif agency_code:
        raise InvalidInput(f"a {role} {what} belongs to no agency; leave out --agency")


def create_user(username: str, role: str, agency_code: str | None, password: str) -> User:
    if not re.fullmatch(r"[A-Za-z0-9._@-]{2,150}", username):
        raise InvalidInput("username must be 2-150 characters: letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        raise InvalidInput(f"--role must be one of: {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    check_role_and_agency(role, agency_code, "user")
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise InvalidInput(f"user {username!r} already exists")
    user = User(username=username, role=role, agency_code=agency_code, password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    return user
