"""Demo data: agencies of one municipality (and a neighbour), a user per role, and one case
with a drug contract, followed up. Idempotent; refused in production. All names are fake."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from flask import current_app

from casesvc.agencies.models import Agency
from casesvc.agencies.service import create_agency, create_user
from casesvc.cases.service import open_case, transition_case
from casesvc.common.timeutil import OSLO, oslo_today
from casesvc.consents.service import record_consent
from casesvc.extensions import db
from casesvc.followups.service import log_event, write_note
from casesvc.policy import ROLE_SCOPES, CaseAccess, Principal, Relation
from casesvc.reactions.service import add_signature, create_reaction, transition_reaction
from casesvc.youths import national_id
from casesvc.youths.service import register_youth

AGENCIES = [
    ("demo-police", "police", "Demo politidistrikt", ["0301"]),
    ("demo-health", "school_health", "Demo skolehelsetjeneste", ["0301"]),
    ("demo-nav", "nav", "Demo NAV-kontor", ["0301"]),
    ("demo-cw", "child_welfare", "Demo barneverntjeneste", ["0301"]),
    ("demo-slt", "coordinator", "Demo SLT-koordinator", ["0301"]),
    ("demo-west-police", "police", "Demo vest politidistrikt", ["4601"]),
]
USERS = [
    ("demo.police", "police", "demo-police", "demo-police-password"),
    ("demo.nurse", "school_health", "demo-health", "demo-nurse-password"),
    ("demo.nav", "nav", "demo-nav", "demo-nav-password"),
    ("demo.childwelfare", "child_welfare", "demo-cw", "demo-childwelfare-password"),
    ("demo.coordinator", "coordinator", "demo-slt", "demo-coordinator-password"),
    ("demo.westpolice", "police", "demo-west-police", "demo-westpolice-password"),
    ("demo.admin", "admin", None, "demo-admin-password"),
    ("demo.auditor", "auditor", None, "demo-auditor-password"),
]


class SeedRefused(RuntimeError):
    pass


def _principal(user, agency: Agency) -> Principal:
    return Principal(
        subject=user.id,
        role=user.role,
        agency=agency.code,
        municipalities=frozenset(agency.municipalities),
        scopes=ROLE_SCOPES[user.role],
        username=user.username,
    )


def seed() -> tuple[bool, list[tuple[str, str, str]]]:
    """Returns (created, [(username, role, password)]). Does nothing when the data is there."""
    if current_app.config["CASESVC"].env == "production":
        raise SeedRefused("demo data is refused when CASESVC_ENV=production")
    listing = [(u, r, p) for u, r, _, p in USERS]
    if db.session.get(Agency, AGENCIES[0][0]) is not None:
        return False, listing
    agencies = {code: create_agency(code, kind, name, muns) for code, kind, name, muns in AGENCIES}
    users = {u: create_user(u, role, agency, password) for u, role, agency, password in USERS}
    police = _principal(users["demo.police"], agencies["demo-police"])
    nurse = _principal(users["demo.nurse"], agencies["demo-health"])
    today = oslo_today()
    born = date(today.year - 15, 3, 14)
    number = next(n for i in range(500, 1000) if (n := national_id.make(born, i, synthetic=True)))
    youth = register_youth(
        police,
        {
            "national_id": number,
            "birth_date": born,
            "given_name": "Demo",
            "family_name": "Testungdom",
            "municipality": "0301",
            "school": "Demo ungdomsskole",
            "guardians": [
                {
                    "name": "Demo Testforelder",
                    "relation": "mother",
                    "phone": "+4700000000",
                    "email": "forelder@example.invalid",
                }
            ],
        },
    )
    case = open_case(
        police,
        {
            "youth_id": youth.id,
            "origin": "police",
            "summary": "Demo: small amount of cannabis.",
            "participant_codes": ["demo-health", "demo-slt"],
        },
    )
    transition_case(police, case, "active", None)
    contract = create_reaction(
        police,
        case,
        {
            "type": "drug_contract",
            "legal_basis": "conditional_waiver",
            "police_reference": "DEMO-0001",
            "starts_on": today - timedelta(days=14),
            "ends_on": today + timedelta(days=180),
            "conditions": [
                {
                    "kind": "drug_test",
                    "description": "Urine test",
                    "every_days": 14,
                    "responsible_agency": "demo-health",
                },
                {"kind": "school_attendance", "description": "Attend school", "responsible_agency": "demo-slt"},
                {
                    "kind": "meeting",
                    "description": "Talk with the school nurse",
                    "every_days": 30,
                    "responsible_agency": "demo-health",
                },
            ],
        },
    )
    add_signature(police, contract, {"party": "youth", "signed_on": today - timedelta(days=14)})
    add_signature(police, contract, {"party": "guardian", "signed_on": today - timedelta(days=14)})
    transition_reaction(case, contract, "active", None)
    record_consent(
        police,
        case,
        {
            "given_by": "both",
            "given_on": today - timedelta(days=14),
            "expires_on": today + timedelta(days=180),
            "purpose": "Follow-up under the drug contract",
            "agencies": ["demo-police", "demo-health", "demo-slt"],
            "categories": ["general", "health"],
        },
    )
    at_nine = datetime.combine(today - timedelta(days=7), time(9, 0), tzinfo=OSLO).astimezone(UTC)
    access = CaseAccess(Relation.SHARED, health=True)
    log_event(
        nurse,
        case,
        access,
        {
            "kind": "drug_test",
            "occurred_at": at_nine,
            "result": "negative",
            "condition_id": contract.conditions[0].id,
            "summary": "Demo test.",
            "category": "health",
            "visibility": "shared",
        },
    )
    write_note(
        police,
        case,
        CaseAccess(Relation.LEAD),
        {"body": "Demo: the youth came with a guardian.", "category": "general", "visibility": "shared"},
    )
    db.session.commit()
    return True, listing
