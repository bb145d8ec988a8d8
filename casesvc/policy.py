"""The access policy (README "Security model"): who may do what to which record. Deny by default.

Everything here is pure: it takes facts (a principal, a case's municipality, participants and
consents, an entry's author and category) and answers. Services gather the facts and call it;
list endpoints use the SQL twins in `casesvc/access/clauses.py`, which state the same rules as
expressions, so a list can never show what a GET would refuse (docs/architecture.md).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from casesvc.common.messages import _

STAFF_ROLES = frozenset({"police", "school_health", "nav", "child_welfare", "coordinator"})
NO_CONTENT_ROLES = frozenset({"admin", "auditor"})

# The most a token of each role may carry; a token holds a subset (README "Identity"). `statistics:read`
# (README "Statistics") opens aggregates only, never case content: coordinator and admin.
_STAFF_SCOPES = frozenset(
    {"cases:read", "cases:write", "notes:read", "notes:write", "consents:write", "reminders:read", "reminders:write"}
)
ROLE_SCOPES: dict[str, frozenset[str]] = {
    **dict.fromkeys(STAFF_ROLES, _STAFF_SCOPES),
    "coordinator": _STAFF_SCOPES | {"statistics:read"},
    "admin": frozenset({"admin", "audit:read", "statistics:read"}),
    "auditor": frozenset({"audit:read"}),
}


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    agency: str | None = None
    municipalities: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    username: str | None = None
    kind: str = "user"  # "user", or "client" for an API client's client_credentials token

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES and self.agency is not None


@dataclass(frozen=True)
class ConsentFacts:
    agencies: frozenset[str]
    covers_health: bool
    given_on: date
    expires_on: date
    withdrawn: bool
    refused: bool = False  # a recorded refusal (README "Consent refusals"): it grants nothing

    def active_on(self, today: date) -> bool:
        return not self.refused and not self.withdrawn and self.given_on <= today <= self.expires_on


@dataclass(frozen=True)
class EmergencyFacts:
    """An emergency access (README "Emergency access"): one user, for a while, read-only."""

    user: str
    started_at: datetime
    expires_at: datetime

    def active_at(self, now: datetime) -> bool:
        return self.started_at <= now < self.expires_at


@dataclass(frozen=True)
class CaseFacts:
    municipality: str
    lead_agency: str
    participants: frozenset[str]
    consents: tuple[ConsentFacts, ...] = ()
    emergency: tuple[EmergencyFacts, ...] = ()  # the caller's emergency accesses to the case


class Relation(enum.Enum):
    LEAD = "lead"  # sees the whole case
    SHARED = "shared"  # participant under an active consent
    CONSENT_REQUIRED = "consent_required"  # participant without one: 403
    EMERGENCY = "emergency"  # participant without one, under the user's emergency access
    HIDDEN = "hidden"  # not a participant, or another municipality: 404


@dataclass(frozen=True)
class CaseAccess:
    relation: Relation
    health: bool = False  # an active consent naming the caller's agency covers health


def case_access(principal: Principal, case: CaseFacts, today: date, now: datetime | None = None) -> CaseAccess:
    """Invariants 1, 2 and 4: municipality and participation first, then consent, today; then,
    for a participant without consent, the user's own emergency access active at `now`: what a
    consent covering general and health would give (README "Emergency access")."""
    if not principal.is_staff:
        return CaseAccess(Relation.HIDDEN)
    agency = principal.agency
    if case.municipality not in principal.municipalities or agency not in case.participants:
        return CaseAccess(Relation.HIDDEN)
    active = [c for c in case.consents if agency in c.agencies and c.active_on(today)]
    health = any(c.covers_health for c in active)
    if agency == case.lead_agency:
        return CaseAccess(Relation.LEAD, health)
    if active:
        return CaseAccess(Relation.SHARED, health)
    if now is not None and any(e.user == principal.subject and e.active_at(now) for e in case.emergency):
        return CaseAccess(Relation.EMERGENCY, health=True)
    return CaseAccess(Relation.CONSENT_REQUIRED)


READ_RELATIONS = frozenset({Relation.LEAD, Relation.SHARED, Relation.EMERGENCY})


class Action(enum.Enum):
    """Each action names its scope and whether it is reserved to the lead agency or a coordinator."""

    READ_CASE = ("cases:read", False)
    UPDATE_CASE = ("cases:write", True)
    TRANSITION_CASE = ("cases:write", True)
    READ_REACTIONS = ("cases:read", False)
    WRITE_REACTION = ("cases:write", False)
    TRANSITION_REACTION = ("cases:write", True)
    READ_EVENTS = ("cases:read", False)
    WRITE_EVENT = ("cases:write", False)
    READ_NOTES = ("notes:read", False)
    WRITE_NOTE = ("notes:write", False)
    READ_CONSENTS = ("cases:read", False)
    WRITE_CONSENT = ("consents:write", True)
    READ_YOUTH = ("cases:read", False)
    WRITE_YOUTH = ("cases:write", False)
    CREATE_YOUTH = ("cases:write", False)
    CREATE_CASE = ("cases:write", False)
    READ_REMINDERS = ("reminders:read", False)
    WRITE_REMINDER = ("reminders:write", False)
    HANDOVER_CASE = ("cases:write", True)
    TRANSFER_CASE = ("cases:write", True)
    READ_HISTORY = ("cases:read", False)

    @property
    def reads(self) -> bool:
        return self.name.startswith("READ_")

    scope: str
    lead_only: bool

    def __new__(cls, scope: str, lead_only: bool) -> Action:
        # Numbered values: with the tuples as values, actions sharing a scope and reach would be
        # aliases of one another (READ_EVENTS would *be* READ_CASE).
        member = object.__new__(cls)
        member._value_ = len(cls.__members__) + 1
        member.scope = scope
        member.lead_only = lead_only
        return member


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int = 200
    reason: str = "allowed"
    detail: str = ""

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True)


def check_role(principal: Principal, action: Action) -> Decision:
    """The checks that do not depend on any record: role (invariant 5) and scope.
    Run before a record is looked up, so their answer never tells whether it exists."""
    if principal.role in NO_CONTENT_ROLES or not principal.is_staff:
        return Decision(False, 403, "case-content-forbidden", _("This role has no access to youth or case content."))
    if action.scope not in principal.scopes:
        return Decision(False, 403, "insufficient-scope", _("The token lacks the scope %(scope)s.", scope=action.scope))
    return ALLOW


def authorize(principal: Principal, action: Action, access: CaseAccess) -> Decision:
    """May `principal` perform `action` on a case it relates to as `access`? (Invariants 1–5, 7)"""
    decision = check_role(principal, action)
    if not decision:
        return decision
    if access.relation is Relation.HIDDEN:
        return Decision(False, 404, "not-found", _("No such case."))
    if access.relation is Relation.CONSENT_REQUIRED or (access.relation is Relation.EMERGENCY and not action.reads):
        # an emergency access reads; it writes nothing the user could not write before
        return Decision(
            False, 403, "consent-required", _("Your agency takes part in this case but no active consent names it.")
        )
    if access.relation is Relation.EMERGENCY:
        return ALLOW
    if action.lead_only and access.relation is not Relation.LEAD and principal.role != "coordinator":
        return Decision(False, 403, "lead-agency-required", _("Only the lead agency or a coordinator may do this."))
    if access.relation in (Relation.LEAD, Relation.SHARED):
        return ALLOW
    return Decision(False, 404, "not-found", _("No such case."))  # deny by default


@dataclass(frozen=True)
class EntryFacts:
    author_agency: str
    category: str
    visibility: str
    kind: str | None = None
    condition_agency: str | None = None


def can_see_entry(principal: Principal, access: CaseAccess, entry: EntryFacts) -> bool:
    """Invariant 3, for a caller already allowed to read the case.

    `agency` entries: the authoring agency only (not even the lead). `health` entries reach
    another agency only under a consent that covers health. A drug-test result always reaches
    the agency responsible for that condition."""
    if access.relation not in READ_RELATIONS:
        return False
    if entry.kind == "drug_test" and entry.condition_agency is not None and entry.condition_agency == principal.agency:
        return True
    if entry.author_agency == principal.agency:
        return True
    if entry.visibility != "shared":
        return False
    if entry.category == "general":
        return True
    return entry.category == "health" and access.health


def youth_visible(principal: Principal, created_by_agency: str, case_accesses: list[CaseAccess]) -> bool:
    """Invariant 6: through a case the caller may see, or to the agency that registered it."""
    if not principal.is_staff:
        return False
    if created_by_agency == principal.agency:
        return True
    return any(a.relation in READ_RELATIONS for a in case_accesses)


def youth_read_basis(principal: Principal, created_by_agency: str, case_accesses: list[CaseAccess]) -> str | None:
    """ "emergency" when the youth is visible to the caller only through an emergency access
    (the read is then marked so in its audit event), else None."""
    if created_by_agency == principal.agency or any(
        a.relation in (Relation.LEAD, Relation.SHARED) for a in case_accesses
    ):
        return None
    return "emergency" if any(a.relation is Relation.EMERGENCY for a in case_accesses) else None


def emergency_access_decision(principal: Principal, access: CaseAccess) -> Decision:
    """May the caller open the case in an emergency? Only a participant that the consents leave
    at consent-required: an outsider is 404 as ever, and there is nothing to break for the lead,
    a participant under consent, or a user whose emergency access is still running (409)."""
    decision = check_role(principal, Action.READ_CASE)
    if not decision:
        return decision
    if access.relation is Relation.HIDDEN:
        return Decision(False, 404, "not-found", _("No such case."))
    if access.relation in (Relation.LEAD, Relation.SHARED):
        return Decision(False, 409, "nothing-to-break", _("Your agency already reads this case."))
    if access.relation is Relation.EMERGENCY:
        return Decision(
            False, 409, "emergency-access-active", _("Your emergency access to this case is still running.")
        )
    return ALLOW


def youth_change_decision(principal: Principal, created_by_agency: str, case_accesses: list[CaseAccess]) -> Decision:
    """Changing a youth's details, for a caller who may see the youth (invariant 6): the rule of
    case changes (invariant 7) — the lead agency of one of the youth's cases, or a coordinator
    taking part in one — and, while the youth has no case, the agency that registered it."""
    if not case_accesses:
        if created_by_agency == principal.agency:
            return ALLOW
        return Decision(False, 404, "not-found", _("No such youth."))
    return _lead_or_coordinator(
        principal,
        case_accesses,
        _("Only the lead agency of one of the youth's cases or a coordinator may change the youth."),
    )


# --- Administration and the audit log ---------------------------------------------------------


def check_admin(principal: Principal) -> Decision:
    """Administration (users, agencies, clients, webhooks): the admin role, with the `admin` scope."""
    if principal.role != "admin":
        return Decision(False, 403, "admin-required", _("Only an administrator may do this."))
    if "admin" not in principal.scopes:
        return Decision(False, 403, "insufficient-scope", _("The token lacks the scope %(scope)s.", scope="admin"))
    return ALLOW


def check_audit_reader(principal: Principal) -> Decision:
    """The audit log (ids and codes, no content) is for admin and auditor, with `audit:read`."""
    if principal.role not in NO_CONTENT_ROLES:
        return Decision(False, 403, "audit-readers-only", _("Only admin and auditor read the audit log."))
    if "audit:read" not in principal.scopes:
        return Decision(False, 403, "insufficient-scope", _("The token lacks the scope %(scope)s.", scope="audit:read"))
    return ALLOW


def access_log_decision(principal: Principal, accesses: list[CaseAccess], youth_is_visible: bool) -> Decision:
    """A youth's access log (who read or changed their data): for admin, auditor, the lead
    agency of one of the youth's cases, and a coordinator taking part in one."""
    if principal.role in NO_CONTENT_ROLES:
        return check_audit_reader(principal)
    if not principal.is_staff:
        return Decision(False, 403, "forbidden", _("No access."))
    if "cases:read" not in principal.scopes:
        return Decision(False, 403, "insufficient-scope", _("The token lacks the scope %(scope)s.", scope="cases:read"))
    if not youth_is_visible:
        return Decision(False, 404, "not-found", _("No such youth."))
    return _lead_or_coordinator(
        principal, accesses, _("The access log is for the lead agency, a coordinator, admin and auditor.")
    )


def _lead_or_coordinator(principal: Principal, accesses: list[CaseAccess], refusal: str) -> Decision:
    """The lead agency of one of the youth's cases, or a coordinator taking part in one."""
    if any(a.relation is Relation.LEAD for a in accesses):
        return ALLOW
    if principal.role == "coordinator" and any(a.relation in (Relation.LEAD, Relation.SHARED) for a in accesses):
        return ALLOW
    return Decision(False, 403, "lead-agency-required", refusal)


def record_decision(principal: Principal, accesses: list[CaseAccess], youth_is_visible: bool) -> Decision:
    """The youth's record (right of access, README "The youth's record"): for the lead agency of one of the
    youth's cases and a coordinator taking part in one. Admin and auditor read no case content."""
    decision = check_role(principal, Action.READ_YOUTH)
    if not decision:
        return decision
    if not youth_is_visible:
        return Decision(False, 404, "not-found", _("No such youth."))
    return _lead_or_coordinator(
        principal, accesses, _("The record is given by the lead agency of one of the youth's cases or a coordinator.")
    )


# --- Statistics (README "Statistics") -------------------------------------------------------------------

STATISTICS_ROLES = frozenset({"coordinator", "admin"})


@dataclass(frozen=True)
class StatisticsDecision(Decision):
    # the municipalities the figures may cover; None: every one (admin)
    municipalities: tuple[str, ...] | None = ()


def statistics_access(principal: Principal, requested: tuple[str, ...] = ()) -> StatisticsDecision:
    """Whose figures may `principal` see? A coordinator: the municipalities its agency serves
    (asking for another is 403); admin: every municipality. Nobody else. `requested` empty
    means every municipality the caller may see."""
    if principal.role not in STATISTICS_ROLES or (principal.role == "coordinator" and not principal.is_staff):
        return StatisticsDecision(
            False, 403, "statistics-readers-only", _("Statistics are for coordinators and administrators.")
        )
    if "statistics:read" not in principal.scopes:
        return StatisticsDecision(
            False, 403, "insufficient-scope", _("The token lacks the scope %(scope)s.", scope="statistics:read")
        )
    wanted = tuple(sorted(set(requested)))
    if principal.role == "admin":
        return StatisticsDecision(True, municipalities=wanted or None)
    outside = [m for m in wanted if m not in principal.municipalities]
    if outside:
        return StatisticsDecision(
            False,
            403,
            "municipality-forbidden",
            _("Your agency does not serve municipality %(municipality)s.", municipality=", ".join(outside)),
        )
    return StatisticsDecision(True, municipalities=wanted or tuple(sorted(principal.municipalities)))


# --- The agency directory ---------------------------------------------------------------------


def agency_directory_reach(principal: Principal) -> tuple[Decision, frozenset[str] | None]:
    """Who reads the agency directory (codes, kinds, names and municipalities; no users, no
    webhooks), and which agencies: the decision, and the municipalities at least one of which an
    agency must serve to be listed (None: every agency).

    Staff whose token carries any scope of their role see the agencies serving at least one of
    their own agency's municipalities: those are the agencies a case of theirs can take in as
    participants. Admin and auditor, who belong to no municipality and meet agency codes in
    users and audit events, see every agency, with any scope of their role too."""
    if not principal.scopes & ROLE_SCOPES.get(principal.role, frozenset()):
        return Decision(False, 403, "insufficient-scope", _("The token carries no scope of its role.")), frozenset()
    if principal.role in NO_CONTENT_ROLES:
        return ALLOW, None
    if not principal.is_staff:
        return Decision(False, 403, "forbidden", _("No access.")), frozenset()
    return ALLOW, principal.municipalities
