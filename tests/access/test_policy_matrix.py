"""The whole access matrix through the HTTP API: role × relationship to the case × action.

One world per (relationship, role); every action of the table is tried on it and compared with
an explicit expected table, so a change to any cell of the policy fails here."""

from __future__ import annotations

import pytest

from casesvc.agencies.service import create_agency
from casesvc.common.timeutil import oslo_today
from casesvc.extensions import db
from casesvc.policy import ROLE_SCOPES, Principal, statistics_access

OK, CREATED = 200, 201
NOT_FOUND = "404 not-found"
CONSENT_REQUIRED = "403 consent-required"
LEAD_REQUIRED = "403 lead-agency-required"
NO_CONTENT = "403 case-content-forbidden"
IN, OUT = "listed", "not listed"

ACTIONS = (
    "get_case",
    "list_cases",
    "get_youth",
    "list_youths",
    "list_reactions",
    "list_events",
    "get_health_event",
    "list_notes",
    "list_consents",
    "create_reaction",
    "create_event",
    "create_note",
    "patch_case",
    "transition_case",
    "transition_reaction",
    "create_consent",
    "withdraw_consent",
    "history",
    "handover",
    "transfer",
    "patch_youth",
)
# handover and transfer are tried with an agency that does not exist: whoever the policy lets
# through gets 422 on that field (nothing moves); the moves themselves are tests/continuity/
VALIDATED = "422 validation-error"

# A participant under a consent: reads and ordinary writes, but not the lead's actions.
_SHARED = {
    "get_case": OK,
    "list_cases": IN,
    "get_youth": OK,
    "list_youths": IN,
    "list_reactions": OK,
    "list_events": OK,
    "get_health_event": OK,
    "list_notes": OK,
    "list_consents": OK,
    "create_reaction": CREATED,
    "create_event": CREATED,
    "create_note": CREATED,
    "patch_case": LEAD_REQUIRED,
    "transition_case": LEAD_REQUIRED,
    "transition_reaction": LEAD_REQUIRED,
    "create_consent": LEAD_REQUIRED,
    "withdraw_consent": LEAD_REQUIRED,
    "history": OK,
    "handover": LEAD_REQUIRED,
    "transfer": LEAD_REQUIRED,
    # the youth's details change under the rule of case changes: lead or coordinator
    "patch_youth": LEAD_REQUIRED,
}
_LEAD_ACTIONS_ALLOWED = {
    "patch_case": OK,
    "transition_case": OK,
    "transition_reaction": OK,
    "create_consent": CREATED,
    "withdraw_consent": OK,
    "handover": VALIDATED,
    "transfer": VALIDATED,
    "patch_youth": OK,
}
_LEAD = {**_SHARED, **_LEAD_ACTIONS_ALLOWED}
# the agency that registered the youth keeps sight of the youth record (invariant 6), whatever
# became of the case; once the youth has a case, changing it is for that case's lead or coordinator
_REGISTERED_YOUTH = {"get_youth": OK, "list_youths": IN, "patch_youth": LEAD_REQUIRED}
_WITHOUT_CONSENT = {
    **dict.fromkeys(ACTIONS, CONSENT_REQUIRED),
    "list_cases": OUT,
    "get_youth": NOT_FOUND,
    "list_youths": OUT,
    "patch_youth": NOT_FOUND,
}
_HIDDEN = {**dict.fromkeys(ACTIONS, NOT_FOUND), "list_cases": OUT, "list_youths": OUT}

EXPECTED: dict[str, dict[str, object]] = {
    # The lead sees and does everything; the health event was written by another agency and no
    # consent names the lead, so it is hidden from the lead as well.
    "lead": {**_LEAD, "get_health_event": NOT_FOUND},
    "participant with consent": _SHARED,
    "participant with consent without health": {**_SHARED, "get_health_event": NOT_FOUND},
    "participant without consent": _WITHOUT_CONSENT,
    # a refusal naming the agency (README "Consent refusals") grants nothing
    "participant with a refusal": _WITHOUT_CONSENT,
    # the user's own emergency access (README "Emergency access"): reads, health included, as under a consent
    # covering general and health; opened by id, so absent from lists; no writes at all
    "participant under emergency access": {
        **_WITHOUT_CONSENT,
        "get_case": OK,
        "get_youth": OK,
        "list_reactions": OK,
        "list_events": OK,
        "get_health_event": OK,
        "list_notes": OK,
        "list_consents": OK,
        "history": OK,
    },
    "participant whose emergency access ended": _WITHOUT_CONSENT,
    "colleague of a user under emergency access": _WITHOUT_CONSENT,
    "non-participant in the municipality": _HIDDEN,
    "agency of another municipality": _HIDDEN,
    "admin": dict.fromkeys(ACTIONS, NO_CONTENT),
    "auditor": dict.fromkeys(ACTIONS, NO_CONTENT),
    # After a handover (police -> slt) the old lead is a participant like any other (README "Continuity").
    "former lead after a handover": {
        **dict.fromkeys(ACTIONS, CONSENT_REQUIRED),
        "list_cases": OUT,
        **_REGISTERED_YOUTH,
    },
    "former lead after a handover, with consent": _SHARED,
    # After a transfer (0301 -> 4601, lead west) the old municipality's agencies are outsiders.
    "old municipality after a transfer": _HIDDEN,
    "receiving lead after a transfer": _LEAD,  # the transfer's consent covers health
    "receiving lead after a transfer, consent without health": {**_LEAD, "get_health_event": NOT_FOUND},
    "another agency of the receiving municipality": _HIDDEN,
}
# A coordinator taking part under a consent may also do what is reserved to the lead.
COORDINATOR_OVERRIDES = {
    "participant with consent": _LEAD_ACTIONS_ALLOWED,
    "participant with consent without health": _LEAD_ACTIONS_ALLOWED,
}

PARTICIPANT_ROLES = ("health", "nav", "cw", "slt")  # school_health, nav, child_welfare, coordinator
CELLS = (
    [("lead", "police")]
    + [
        (rel, code)
        for rel in (
            "participant with consent",
            "participant with consent without health",
            "participant without consent",
            "participant with a refusal",
            "participant under emergency access",
            "participant whose emergency access ended",
            "colleague of a user under emergency access",
            "non-participant in the municipality",
        )
        for code in PARTICIPANT_ROLES
    ]
    + [
        ("non-participant in the municipality", "police2"),
        ("agency of another municipality", "west"),
        ("agency of another municipality", "westhealth"),
        ("admin", "admin"),
        ("auditor", "auditor"),
    ]
    + [("former lead after a handover", "police"), ("former lead after a handover, with consent", "police")]
    + [("old municipality after a transfer", code) for code in ("police", *PARTICIPANT_ROLES)]
    + [
        ("receiving lead after a transfer", "west"),
        ("receiving lead after a transfer, consent without health", "west"),
        ("another agency of the receiving municipality", "westhealth"),
    ]
)


def expected_for(relationship: str, code: str) -> dict[str, object]:
    expected = dict(EXPECTED[relationship])
    if relationship == "old municipality after a transfer" and code == "police":
        expected.update(_REGISTERED_YOUTH)
    if code == "slt":
        expected.update(COORDINATOR_OVERRIDES.get(relationship, {}))
    return expected


def outcome(resp) -> object:
    if resp.status_code < 400:
        return resp.status_code
    return f"{resp.status_code} {resp.json['type'].rsplit('/', 1)[-1]}"


def listed(resp, wanted_id: str) -> object:
    if resp.status_code != 200:
        return outcome(resp)
    return IN if wanted_id in {item["id"] for item in resp.json["items"]} else OUT


def build(world, app, relationship: str, code: str) -> dict:
    """A case led by police with a third participant `doc` that wrote a shared health event;
    the actor takes part (with the consent the relationship names) or not. The relationships
    "after a handover" and "after a transfer" then move the case: police hands the lead to slt,
    or moves the case to 4601 with west as its lead."""
    with app.app_context():
        create_agency("doc", "school_health", "Test doc", ["0301"])
        db.session.commit()
    world.actors["doc"] = world.actor("school_health", "doc", "user.doc")
    handover, transfer = "after a handover" in relationship, "transfer" in relationship
    participating = relationship.startswith(("participant", "colleague")) or (transfer and code in PARTICIPANT_ROLES)
    case = world.case(
        by="police", participants=["doc", code] if participating else ["doc", "slt"] if handover else ["doc"]
    )
    base = f"/api/v1/cases/{case['id']}"
    world.consent(case, ["doc"], categories=("general", "health"))
    if relationship == "participant with consent":
        world.consent(case, [code], categories=("general", "health"))
    elif relationship == "participant with consent without health":
        world.consent(case, [code], categories=("general",))
    elif relationship == "participant with a refusal":
        world.consent(case, [code], categories=("general", "health"), decision="refused")
    elif "emergency access" in relationship:
        _emergency_access(
            world, app, case, code, ended=relationship.endswith("ended"), colleague=relationship.startswith("colleague")
        )
    spare = world.consent(case, ["doc"])
    reaction = world["police"].post(f"{base}/reactions", json=REACTION)
    assert reaction.status_code == 201, reaction.json
    event = world["doc"].post(f"{base}/events", json={**EVENT, "category": "health", "summary": "Health"})
    assert event.status_code == 201, event.json
    lead = "police"
    if handover:
        moved = world["police"].post(f"{base}/handover", json={"to": "slt", "reason": "Coordinator follows up"})
        assert moved.status_code == 200, moved.json
        lead = "slt"
        if relationship.endswith("with consent"):
            world.consent(case, ["police"], by="slt", categories=("general", "health"))
    elif transfer:
        categories = ["general"] if relationship.endswith("without health") else ["general", "health"]
        today = oslo_today()
        moved = world["police"].post(
            f"{base}/transfer",
            json={
                "municipality": "4601",
                "lead": "west",
                "reason": "The family moved",
                "consent": {
                    "given_by": "both",
                    "given_on": today.isoformat(),
                    "expires_on": today.replace(year=today.year + 1).isoformat(),
                    "purpose": "Follow-up",
                    "categories": categories,
                },
            },
        )
        assert moved.status_code == 200, moved.json
        lead = "west"
    return {
        "case": case,
        "base": base,
        "spare_consent": spare["id"],
        "reaction": reaction.json["id"],
        "health_event": event.json["id"],
        "etag": world[lead].get(base).headers["ETag"],
        "lead": lead,
        "consent_for": "west" if transfer else "doc",
        "youth_etag": world[lead].get(f"/api/v1/youths/{case['youth_id']}").headers["ETag"],
    }


def _emergency_access(world, app, case, code, ended: bool, colleague: bool) -> None:
    """The actor `code` breaks the glass; or its access ran out an hour ago; or a colleague in
    its agency broke it, and `code` is someone else."""
    holder = world[code]
    if colleague:
        holder = world.actor(holder.role, code, f"user.{code}.colleague")
    resp = holder.post(
        f"/api/v1/cases/{case['id']}/emergency-access",
        json={"reason": "The youth was found unconscious at school tonight."},
    )
    assert resp.status_code == 201, resp.json
    if ended:
        from datetime import timedelta

        from casesvc.emergency.models import EmergencyAccess

        with app.app_context():
            access = db.session.get(EmergencyAccess, resp.json["id"])
            access.started_at -= timedelta(hours=5)
            access.expires_at -= timedelta(hours=5)
            db.session.commit()


REACTION = {"type": "follow_up_plan", "legal_basis": "consent", "starts_on": "2027-01-04"}
EVENT = {
    "kind": "meeting",
    "occurred_at": "2027-01-05T08:00:00Z",
    "category": "general",
    "visibility": "shared",
    "summary": "Met",
}


def run_actions(actor, w: dict) -> dict[str, object]:
    base, case = w["base"], w["case"]
    today = oslo_today()
    return {
        "get_case": outcome(actor.get(base)),
        "list_cases": listed(actor.get("/api/v1/cases?limit=200"), case["id"]),
        "get_youth": outcome(actor.get(f"/api/v1/youths/{case['youth_id']}")),
        "list_youths": listed(actor.get("/api/v1/youths?limit=200"), case["youth_id"]),
        "list_reactions": outcome(actor.get(f"{base}/reactions")),
        "list_events": outcome(actor.get(f"{base}/events")),
        "get_health_event": outcome(actor.get(f"{base}/events/{w['health_event']}")),
        "list_notes": outcome(actor.get(f"{base}/notes")),
        "list_consents": outcome(actor.get(f"{base}/consents")),
        "create_reaction": outcome(actor.post(f"{base}/reactions", json=REACTION)),
        "create_event": outcome(actor.post(f"{base}/events", json=EVENT)),
        "create_note": outcome(actor.post(f"{base}/notes", json={"body": "A note"})),
        "patch_case": outcome(actor.patch(base, json={"summary": "Changed"}, headers={"If-Match": w["etag"]})),
        "transition_case": outcome(actor.post(f"{base}/transitions", json={"to": "active"})),
        "transition_reaction": outcome(
            actor.post(
                f"{base}/reactions/{w['reaction']}/transitions", json={"to": "cancelled", "reason": "Not needed"}
            )
        ),
        "create_consent": outcome(
            actor.post(
                f"{base}/consents",
                json={
                    "given_by": "both",
                    "given_on": today.isoformat(),
                    "expires_on": today.replace(year=today.year + 1).isoformat(),
                    "purpose": "Follow-up",
                    "agencies": [w["consent_for"]],
                    "categories": ["general"],
                },
            )
        ),
        "withdraw_consent": outcome(actor.post(f"{base}/consents/{w['spare_consent']}/withdraw")),
        "history": outcome(actor.get(f"{base}/history")),
        "handover": outcome(actor.post(f"{base}/handover", json={"to": "nosuch", "reason": "Test"})),
        "transfer": outcome(
            actor.post(
                f"{base}/transfer",
                json={
                    "municipality": "1103",
                    "lead": "nosuch",
                    "reason": "Test",
                    "consent": {
                        "given_by": "both",
                        "given_on": today.isoformat(),
                        "expires_on": today.replace(year=today.year + 1).isoformat(),
                        "purpose": "Follow-up",
                        "categories": ["general"],
                    },
                },
            )
        ),
        "patch_youth": outcome(
            actor.patch(
                f"/api/v1/youths/{case['youth_id']}",
                json={"school": "Changed School"},
                headers={"If-Match": w["youth_etag"]},
            )
        ),
    }


@pytest.mark.parametrize("relationship,code", CELLS, ids=[f"{rel}-{code}" for rel, code in CELLS])
def test_access_matrix(world, app, relationship, code):
    w = build(world, app, relationship, code)
    actual = run_actions(world[code], w)
    assert actual == expected_for(relationship, code)
    # The refusals changed nothing; the allowed writes did.
    lead = world[w["lead"]]
    case = lead.get(w["base"]).json
    changed = expected_for(relationship, code)["patch_case"] == OK
    assert (case["summary"] == "Changed") is changed
    assert (case["status"] == "active") is changed
    youth = lead.get(f"/api/v1/youths/{case['youth_id']}").json
    assert (youth["school"] == "Changed School") is (expected_for(relationship, code)["patch_youth"] == OK)
    entries = lead.get(f"{w['base']}/notes").json["items"]
    assert len(entries) == (1 if expected_for(relationship, code)["create_note"] == CREATED else 0)


# --- Statistics (README "Statistics"): whose figures each principal may see -----------------------------


def _principal(role: str, municipalities=(), scopes=None) -> Principal:
    agency = None if role in ("admin", "auditor") else f"agency-{role}"
    return Principal(
        subject=f"user-{role}",
        role=role,
        agency=agency,
        municipalities=frozenset(municipalities),
        scopes=frozenset(ROLE_SCOPES[role] if scopes is None else scopes),
    )


STATISTICS_PRINCIPALS = {
    "coordinator of 0301": _principal("coordinator", ["0301"]),
    "coordinator of 0301 and 4601": _principal("coordinator", ["0301", "4601"]),
    "coordinator without statistics:read": _principal("coordinator", ["0301"], scopes=["cases:read"]),
    "coordinator with statistics:read only": _principal("coordinator", ["0301"], scopes=["statistics:read"]),
    "admin": _principal("admin"),
    "admin with statistics:read only": _principal("admin", scopes=["statistics:read"]),
    "admin without statistics:read": _principal("admin", scopes=["admin", "audit:read"]),
    "auditor": _principal("auditor"),
    **{role: _principal(role, ["0301"]) for role in ("police", "school_health", "nav", "child_welfare")},
    # a token can never carry a scope beyond its role's set; the policy refuses it all the same
    "police holding statistics:read": _principal("police", ["0301"], scopes=["statistics:read"]),
}
STATISTICS_REQUESTS = {"default": (), "0301": ("0301",), "4601": ("4601",), "both": ("0301", "4601")}
READERS_ONLY, NO_SCOPE, OTHER_MUNICIPALITY = (
    "403 statistics-readers-only",
    "403 insufficient-scope",
    "403 municipality-forbidden",
)
EVERY = "every municipality"
STATISTICS_EXPECTED = {
    "coordinator of 0301": {
        "default": ("0301",),
        "0301": ("0301",),
        "4601": OTHER_MUNICIPALITY,
        "both": OTHER_MUNICIPALITY,
    },
    "coordinator of 0301 and 4601": {
        "default": ("0301", "4601"),
        "0301": ("0301",),
        "4601": ("4601",),
        "both": ("0301", "4601"),
    },
    "coordinator without statistics:read": dict.fromkeys(STATISTICS_REQUESTS, NO_SCOPE),
    "coordinator with statistics:read only": {
        "default": ("0301",),
        "0301": ("0301",),
        "4601": OTHER_MUNICIPALITY,
        "both": OTHER_MUNICIPALITY,
    },
    "admin": {"default": EVERY, "0301": ("0301",), "4601": ("4601",), "both": ("0301", "4601")},
    "admin with statistics:read only": {
        "default": EVERY,
        "0301": ("0301",),
        "4601": ("4601",),
        "both": ("0301", "4601"),
    },
    "admin without statistics:read": dict.fromkeys(STATISTICS_REQUESTS, NO_SCOPE),
    "auditor": dict.fromkeys(STATISTICS_REQUESTS, READERS_ONLY),
    **{
        role: dict.fromkeys(STATISTICS_REQUESTS, READERS_ONLY)
        for role in ("police", "school_health", "nav", "child_welfare", "police holding statistics:read")
    },
}


def _statistics_outcome(decision):
    if not decision.allowed:
        return f"{decision.status} {decision.reason}"
    return EVERY if decision.municipalities is None else decision.municipalities


@pytest.mark.parametrize("who", sorted(STATISTICS_PRINCIPALS))
def test_statistics_matrix(who):
    actual = {
        name: _statistics_outcome(statistics_access(STATISTICS_PRINCIPALS[who], requested))
        for name, requested in STATISTICS_REQUESTS.items()
    }
    assert actual == STATISTICS_EXPECTED[who]


def test_only_coordinator_and_admin_may_hold_statistics_read():
    assert sorted(role for role, scopes in ROLE_SCOPES.items() if "statistics:read" in scopes) == [
        "admin",
        "coordinator",
    ]


# --- The agency directory (policy.agency_directory_reach) ---------------------------------------

OSLO_AGENCIES = {"police", "health", "nav", "cw", "slt", "police2"}
BERGEN_AGENCIES = {"west", "westhealth"}
DIRECTORY_EXPECTED: dict[tuple[str, str], object] = {
    # (actor, scopes the token carries): the codes listed, or the refusal
    **{(code, "all"): OSLO_AGENCIES for code in ("police", "health", "nav", "cw", "slt", "police2")},
    ("west", "all"): BERGEN_AGENCIES,
    ("westhealth", "all"): BERGEN_AGENCIES,
    ("police", "cases:read"): OSLO_AGENCIES,
    ("health", "reminders:read"): OSLO_AGENCIES,
    ("police", "none"): "403 insufficient-scope",
    ("admin", "all"): OSLO_AGENCIES | BERGEN_AGENCIES,
    ("admin", "audit:read"): OSLO_AGENCIES | BERGEN_AGENCIES,
    ("auditor", "all"): OSLO_AGENCIES | BERGEN_AGENCIES,
    ("auditor", "none"): "403 insufficient-scope",
}


def test_agency_directory_matrix(world):
    actual = {}
    for actor, scopes in DIRECTORY_EXPECTED:
        base = world[actor]
        if scopes != "all":
            base = world.as_user(
                base.user_id, base.role, base.agency, f"user.{actor}", scopes=[] if scopes == "none" else [scopes]
            )
        resp = base.get("/api/v1/agencies/directory")
        actual[actor, scopes] = (
            {item["code"] for item in resp.json["items"]} if resp.status_code == 200 else outcome(resp)
        )
    assert actual == DIRECTORY_EXPECTED
