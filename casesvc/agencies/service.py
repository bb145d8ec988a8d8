"""Agencies and staff users: created by operators (CLI) and admins (API)."""

from __future__ import annotations

import re

from sqlalchemy import delete, select, update

from casesvc.agencies.models import Agency
from casesvc.audit import note, noted_page
from casesvc.auth.models import EXTERNAL_PASSWORD_HASH, CalendarFeed, RefreshFamily, User
from casesvc.auth.passwords import hash_password
from casesvc.common.messages import Message, _
from casesvc.common.pagination import Keyset, paginate
from casesvc.common.timeutil import utcnow
from casesvc.errors import conflict, invalid_input, not_found
from casesvc.extensions import db
from casesvc.policy import STAFF_ROLES, Principal
from casesvc.vocabulary import AGENCY_KINDS, ROLES

CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,31}")  # case-sensitive: "Nav" is not "nav"
MUNICIPALITY_PATTERN = re.compile(r"\d{4}")
RESERVED_CODES = frozenset({"directory"})  # /api/v1/agencies/directory is the directory, not an agency
MIN_PASSWORD_LENGTH = 8  # NIST SP 800-63B: at least 8 characters for a password the user chooses
MAX_NAME_LENGTH = 200


def _holder(role: str, what: str) -> Message:
    """ "a nav user", "an auditor client": the holder of a role, as the messages name it."""
    vowel = role[:1] in "aeiou"
    if what == "client":
        return _("an %(role)s client", role=role) if vowel else _("a %(role)s client", role=role)
    return _("an %(role)s user", role=role) if vowel else _("a %(role)s user", role=role)


# --- agencies ----------------------------------------------------------------------------------


def parse_municipalities(raw: str) -> list[str]:
    """The CLI's `--municipality 0301,4601`."""
    return check_municipalities([m.strip() for m in raw.split(",") if m.strip()])


def check_municipalities(items: list[str]) -> list[str]:
    if not items or any(not isinstance(m, str) or not MUNICIPALITY_PATTERN.fullmatch(m) for m in items):
        raise invalid_input(
            _(
                "municipalities must be one or more 4-digit municipality numbers "
                "(e.g. 0301; on the command line comma-separated, 0301,4601)"
            ),
            "municipalities",
        )
    return sorted(set(items))


def check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise invalid_input(_("name must not be empty"), "name")
    if len(name) > MAX_NAME_LENGTH:
        raise invalid_input(_("name must be at most %(most)s characters", most=MAX_NAME_LENGTH), "name")
    return name


def create_agency(code: str, kind: str, name: str, municipalities: list[str]) -> Agency:
    note(resource_type="agency")
    if not CODE_PATTERN.fullmatch(code):
        raise invalid_input(
            _("code must be 2-32 characters: letters a-z or A-Z, digits, '-' or '_', beginning with a letter or digit"),
            "code",
        )
    if code in RESERVED_CODES:
        raise invalid_input(
            _("code %(code)r is reserved: GET /api/v1/agencies/%(path)s is the agency directory", code=code, path=code),
            "code",
        )
    if kind not in AGENCY_KINDS:
        raise invalid_input(_("kind must be one of: %(choices)s", choices=", ".join(AGENCY_KINDS)), "kind")
    name = check_name(name)
    municipalities = check_municipalities(municipalities)
    if db.session.get(Agency, code) is not None:
        raise invalid_input(_("agency %(code)r already exists", code=code), "code")
    agency = Agency(code=code, kind=kind, name=name, municipalities=municipalities)
    db.session.add(agency)
    db.session.flush()
    note(resource_id=agency.code)
    return agency


def get_agency(code: str, for_update: bool = False) -> Agency:
    agency = db.session.get(Agency, code, with_for_update=for_update)
    if agency is None:
        raise not_found(_("No such agency."))
    note(resource_type="agency", resource_id=agency.code)
    return agency


def update_agency(agency: Agency, changes: dict) -> Agency:
    """Name and municipalities; the code and kind never change (users and cases refer to them).
    The agency's users see by the new municipalities from their next request on."""
    if "name" in changes:
        agency.name = check_name(changes["name"])
    if "municipalities" in changes:
        agency.municipalities = check_municipalities(changes["municipalities"])
    db.session.flush()
    return agency


_AGENCY_KEYSET = Keyset(Agency.created_at, Agency.code)


def list_agencies(args: dict) -> dict:
    """Newest first, by (created_at, code)."""
    stmt = select(Agency)
    if args.get("kind"):
        stmt = stmt.where(Agency.kind == args["kind"])
    page = _AGENCY_KEYSET.fetch(stmt, args["limit"], args.get("cursor"))
    note(resource_type="agency", ids=[agency.code for agency in page["items"]])
    return page


# --- users -------------------------------------------------------------------------------------


def check_role_and_agency(role: str, agency_code: str | None, what: str) -> None:
    """A staff role belongs to an agency of its own kind; admin and auditor to none.
    `what` names the holder in messages ("user", "client")."""
    if role not in ROLES:
        raise invalid_input(_("role must be one of: %(choices)s", choices=", ".join(ROLES)), "role")
    if role in STAFF_ROLES:
        if not agency_code:
            raise invalid_input(_("agency is required for %(holder)s", holder=_holder(role, what)), "agency")
        agency = db.session.get(Agency, agency_code)
        if agency is None:
            raise invalid_input(_("no agency %(code)r", code=agency_code), "agency")
        if agency.kind != role:
            raise invalid_input(
                _(
                    "role %(role)r does not match agency %(code)r of kind %(kind)r",
                    role=role,
                    code=agency_code,
                    kind=agency.kind,
                ),
                "agency",
            )
    elif agency_code:
        raise invalid_input(
            _("agency must be left out: %(holder)s belongs to no agency", holder=_holder(role, what)), "agency"
        )


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise invalid_input(_("password must be at least %(least)s characters", least=MIN_PASSWORD_LENGTH), "password")


def create_user(username: str, role: str, agency_code: str | None, password: str) -> User:
    note(resource_type="user")
    if not re.fullmatch(r"[A-Za-z0-9._@-]{2,150}", username):
        raise invalid_input(_("username must be 2-150 characters: letters, digits, '.', '_', '@' or '-'"), "username")
    if role not in ROLES:
        raise invalid_input(_("role must be one of: %(choices)s", choices=", ".join(ROLES)), "role")
    check_password(password)
    check_role_and_agency(role, agency_code, "user")
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise invalid_input(_("user %(username)r already exists", username=username), "username")
    user = User(username=username, role=role, agency_code=agency_code, password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    note(resource_id=user.id)
    return user


def get_user(user_id: str) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise not_found(_("No such user."))
    note(resource_type="user", resource_id=user.id)
    return user


def list_users(args: dict) -> dict:
    note(resource_type="user")
    stmt = select(User)
    if args.get("agency"):
        stmt = stmt.where(User.agency_code == args["agency"])
    if args.get("role"):
        stmt = stmt.where(User.role == args["role"])
    if args.get("active") is not None:
        stmt = stmt.where(User.active == args["active"])
    return noted_page(paginate(stmt, User, args["limit"], args.get("cursor")))


def _end_logins(user: User, reason: str) -> None:
    """Every login the user has ends: its refresh tokens, and the access tokens issued with them
    (they carry the login's id, checked on every request), are refused from the next request on,
    and so is its calendar address (a credential too; the user asks for a new one)."""
    db.session.execute(
        update(RefreshFamily)
        .where(RefreshFamily.user_id == user.id, RefreshFamily.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    db.session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == user.id))


def _is_self(principal: Principal, user: User) -> bool:
    return principal.kind == "user" and principal.subject == user.id


def _refuse_if_external(user: User, what: Message) -> None:
    """A user provisioned from the identity provider has no password here, and its role and
    agency follow the provider's claims on each login: both are changed at the provider."""

    if user.password_hash == EXTERNAL_PASSWORD_HASH:
        raise conflict(
            "external-user",
            _("This user signs in through the identity provider; its %(what)s is changed there.", what=what),
        )


def disable_user(principal: Principal, user: User) -> User:
    """The user can no longer log in, and every login it has ends at once: its live access and
    refresh tokens are refused from the next request on, and stay refused if it is enabled again.
    An administrator cannot disable their own account (someone must be left to undo it)."""
    if _is_self(principal, user):
        raise conflict("cannot-disable-self", _("You cannot disable your own account; another administrator can."))
    user.active = False
    _end_logins(user, "user_disabled")
    db.session.flush()
    return user


def change_user(principal: Principal, user: User, changes: dict) -> User:
    """A new role or agency (the two must fit, as at creation). The user's logins end, since their
    tokens carry the old role and agency; the user logs in again to work in the new one. An
    administrator cannot change their own role or agency (another one can)."""
    role = changes.get("role", user.role)
    agency_code = changes.get("agency_code", user.agency_code)
    if role not in STAFF_ROLES and "agency_code" not in changes:
        agency_code = None  # admin and auditor belong to no agency: a new role of theirs leaves it
    if (role, agency_code) == (user.role, user.agency_code):
        return user
    if _is_self(principal, user):
        raise conflict("cannot-change-self", _("You cannot change your own role or agency; another administrator can."))
    _refuse_if_external(user, _("role and agency"))
    check_role_and_agency(role, agency_code, "user")
    user.role, user.agency_code = role, agency_code
    _end_logins(user, "user_changed")
    db.session.flush()
    return user


def set_password(user: User, password: str, principal: Principal | None = None) -> User:
    """A new password: an administrator's reset of another user's (`principal`), or the command
    line's. Every login the user had ends, as after a suspected compromise; the new password
    works at once. Over the API an administrator cannot reset their own: a stolen access token
    must not be enough to take the account over."""
    if principal is not None and _is_self(principal, user):
        raise conflict(
            "cannot-change-self",
            _(
                "You cannot reset your own password here; another administrator "
                "can, or `casesvc users set-password` on the server."
            ),
        )
    _refuse_if_external(user, _("password"))
    check_password(password)
    user.password_hash = hash_password(password)
    _end_logins(user, "password_reset")
    db.session.flush()
    return user


def user_by_username(username: str) -> User:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise invalid_input(_("no user %(username)r", username=username), "username")
    return user


def enable_user(user: User) -> User:
    """The user may log in again; logins ended by disabling stay ended."""
    user.active = True
    db.session.flush()
    return user
