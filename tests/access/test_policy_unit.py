"""The pure access policy (casesvc/policy.py), without a database or HTTP."""

from __future__ import annotations

from datetime import UTC, date, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from casesvc.policy import (
    NO_CONTENT_ROLES,
    ROLE_SCOPES,
    STAFF_ROLES,
    Action,
    CaseAccess,
    CaseFacts,
    ConsentFacts,
    EntryFacts,
    Principal,
    Relation,
    authorize,
    can_see_entry,
    case_access,
    check_role,
    youth_change_decision,
    youth_visible,
)

TODAY = date(2027, 3, 10)
YESTERDAY = TODAY - timedelta(days=1)
TOMORROW = TODAY + timedelta(days=1)


def staff(agency: str, role: str = "police", municipalities=("0301",), scopes=None) -> Principal:
    return Principal(
        subject=f"user-{agency}",
        role=role,
        agency=agency,
        municipalities=frozenset(municipalities),
        scopes=frozenset(ROLE_SCOPES[role] if scopes is None else scopes),
    )


ADMIN = Principal(subject="admin", role="admin", scopes=ROLE_SCOPES["admin"])
AUDITOR = Principal(subject="auditor", role="auditor", scopes=ROLE_SCOPES["auditor"])


def consent(agencies, health=False, given_on=YESTERDAY, expires_on=TOMORROW, withdrawn=False) -> ConsentFacts:
    return ConsentFacts(frozenset(agencies), health, given_on, expires_on, withdrawn)


def case(*consents, participants=("police", "health", "nav"), lead="police", municipality="0301") -> CaseFacts:
    return CaseFacts(municipality, lead, frozenset(participants), tuple(consents))


# --- ConsentFacts.active_on ------------------------------------------------------------------


def test_consent_given_today_is_active_today():
    assert consent(["nav"], given_on=TODAY).active_on(TODAY)


def test_consent_given_tomorrow_is_not_active_yet():
    assert not consent(["nav"], given_on=TOMORROW, expires_on=TOMORROW + timedelta(days=5)).active_on(TODAY)


def test_consent_expiring_today_is_still_active_today():
    assert consent(["nav"], expires_on=TODAY).active_on(TODAY)


def test_consent_expiring_today_is_inactive_tomorrow():
    assert not consent(["nav"], expires_on=TODAY).active_on(TOMORROW)


def test_consent_that_expired_yesterday_is_inactive():
    assert not consent(["nav"], expires_on=YESTERDAY).active_on(TODAY)


def test_withdrawn_consent_is_inactive_even_within_its_dates():
    assert not consent(["nav"], withdrawn=True).active_on(TODAY)


# --- case_access -----------------------------------------------------------------------------


def test_lead_agency_is_lead_without_any_consent():
    assert case_access(staff("police"), case(), TODAY) == CaseAccess(Relation.LEAD, False)


def test_lead_gets_health_only_through_a_health_consent_naming_it():
    assert case_access(staff("police"), case(consent(["police"], health=True)), TODAY).health
    assert not case_access(staff("police"), case(consent(["nav"], health=True)), TODAY).health
    assert not case_access(staff("police"), case(consent(["police"], health=False)), TODAY).health


def test_participant_with_active_consent_is_shared():
    access = case_access(staff("nav", "nav"), case(consent(["nav"])), TODAY)
    assert access == CaseAccess(Relation.SHARED, False)


def test_participant_with_health_consent_has_health():
    access = case_access(staff("health", "school_health"), case(consent(["health"], health=True)), TODAY)
    assert access == CaseAccess(Relation.SHARED, True)


def test_health_needs_the_health_consent_to_be_active():
    facts = case(consent(["nav"]), consent(["nav"], health=True, withdrawn=True))
    assert case_access(staff("nav", "nav"), facts, TODAY) == CaseAccess(Relation.SHARED, False)


def test_participant_without_consent_needs_consent():
    assert case_access(staff("nav", "nav"), case(), TODAY).relation is Relation.CONSENT_REQUIRED


def test_consent_naming_another_agency_does_not_help():
    assert case_access(staff("nav", "nav"), case(consent(["health"])), TODAY).relation is Relation.CONSENT_REQUIRED


@pytest.mark.parametrize(
    "facts",
    [
        consent(["nav"], withdrawn=True),
        consent(["nav"], expires_on=YESTERDAY),
        consent(["nav"], given_on=TOMORROW, expires_on=TOMORROW),
    ],
    ids=["withdrawn", "expired", "not-yet-given"],
)
def test_inactive_consent_leaves_participant_without_access(facts):
    assert case_access(staff("nav", "nav"), case(facts), TODAY).relation is Relation.CONSENT_REQUIRED


def test_consent_expiring_today_gives_access_today_but_not_tomorrow():
    facts = case(consent(["nav"], expires_on=TODAY))
    assert case_access(staff("nav", "nav"), facts, TODAY).relation is Relation.SHARED
    assert case_access(staff("nav", "nav"), facts, TOMORROW).relation is Relation.CONSENT_REQUIRED


def test_non_participant_is_hidden_even_with_a_consent_naming_it():
    facts = case(consent(["cw"]), participants=("police", "nav"))
    assert case_access(staff("cw", "child_welfare"), facts, TODAY).relation is Relation.HIDDEN


def test_participant_agency_not_serving_the_municipality_is_hidden():
    facts = case(consent(["nav"]))
    assert case_access(staff("nav", "nav", municipalities=("4601",)), facts, TODAY).relation is Relation.HIDDEN
    # not even the lead
    assert case_access(staff("police", municipalities=("4601",)), facts, TODAY).relation is Relation.HIDDEN


@pytest.mark.parametrize(
    "principal", [ADMIN, AUDITOR, Principal("x", "police", agency=None, municipalities=frozenset({"0301"}))]
)
def test_no_content_roles_and_staff_without_agency_are_hidden(principal):
    assert case_access(principal, case(consent(["police"])), TODAY).relation is Relation.HIDDEN


# --- check_role and authorize ----------------------------------------------------------------


@pytest.mark.parametrize("principal", [ADMIN, AUDITOR])
@pytest.mark.parametrize("action", list(Action))
def test_admin_and_auditor_are_refused_every_action(principal, action):
    decision = check_role(principal, action)
    assert (decision.allowed, decision.status, decision.reason) == (False, 403, "case-content-forbidden")
    # even an access they could never have had does not help
    decision = authorize(principal, action, CaseAccess(Relation.LEAD, True))
    assert (decision.allowed, decision.status, decision.reason) == (False, 403, "case-content-forbidden")


@pytest.mark.parametrize("action", list(Action))
def test_missing_scope_is_refused_before_anything_else(action):
    principal = staff("police", scopes=ROLE_SCOPES["police"] - {action.scope})
    decision = check_role(principal, action)
    assert (decision.allowed, decision.status, decision.reason) == (False, 403, "insufficient-scope")
    # the scope answer comes before the record's: it does not tell whether the case exists
    decision = authorize(principal, action, CaseAccess(Relation.HIDDEN))
    assert (decision.status, decision.reason) == (403, "insufficient-scope")


@pytest.mark.parametrize("action", list(Action))
def test_staff_with_the_scope_passes_check_role(action):
    assert check_role(staff("police", scopes={action.scope}), action).allowed


@pytest.mark.parametrize("action", list(Action))
def test_hidden_case_is_404(action):
    decision = authorize(staff("police2"), action, CaseAccess(Relation.HIDDEN))
    assert (decision.allowed, decision.status) == (False, 404)


@pytest.mark.parametrize("action", list(Action))
def test_consent_required_is_403_consent_required(action):
    decision = authorize(staff("nav", "nav"), action, CaseAccess(Relation.CONSENT_REQUIRED))
    assert (decision.allowed, decision.status, decision.reason) == (False, 403, "consent-required")


@pytest.mark.parametrize("action", list(Action))
def test_lead_may_do_everything(action):
    assert authorize(staff("police"), action, CaseAccess(Relation.LEAD)).allowed


LEAD_ONLY = {
    Action.UPDATE_CASE,
    Action.TRANSITION_CASE,
    Action.TRANSITION_REACTION,
    Action.WRITE_CONSENT,
    Action.HANDOVER_CASE,
    Action.TRANSFER_CASE,
}


def test_lead_only_actions_are_the_documented_ones():
    assert {a for a in Action if a.lead_only} == LEAD_ONLY


def test_every_action_is_its_own_member():
    # actions sharing scope and reach must not collapse into aliases of one another
    assert len(list(Action)) == len(Action.__members__) == 21
    assert Action.READ_EVENTS is not Action.READ_CASE
    assert (Action.READ_EVENTS.scope, Action.READ_EVENTS.lead_only) == (Action.READ_CASE.scope, False)


@pytest.mark.parametrize("action", list(Action))
def test_shared_participant_may_do_all_but_lead_only_actions(action):
    decision = authorize(staff("nav", "nav"), action, CaseAccess(Relation.SHARED))
    if action in LEAD_ONLY:
        assert (decision.allowed, decision.status, decision.reason) == (False, 403, "lead-agency-required")
    else:
        assert decision.allowed


@pytest.mark.parametrize("action", sorted(LEAD_ONLY, key=lambda a: a.name))
def test_coordinator_with_consent_may_do_lead_only_actions(action):
    assert authorize(staff("slt", "coordinator"), action, CaseAccess(Relation.SHARED)).allowed


@pytest.mark.parametrize("action", sorted(LEAD_ONLY, key=lambda a: a.name))
def test_coordinator_without_consent_may_not(action):
    decision = authorize(staff("slt", "coordinator"), action, CaseAccess(Relation.CONSENT_REQUIRED))
    assert (decision.status, decision.reason) == (403, "consent-required")


def test_scope_decides_per_action():
    reader = staff("police", scopes={"cases:read"})
    assert authorize(reader, Action.READ_CASE, CaseAccess(Relation.LEAD)).allowed
    for action in (
        Action.WRITE_EVENT,
        Action.WRITE_REACTION,
        Action.UPDATE_CASE,
        Action.WRITE_NOTE,
        Action.READ_NOTES,
        Action.WRITE_CONSENT,
    ):
        assert authorize(reader, action, CaseAccess(Relation.LEAD)).reason == "insufficient-scope"


# --- can_see_entry ---------------------------------------------------------------------------

LEAD = CaseAccess(Relation.LEAD)
LEAD_HEALTH = CaseAccess(Relation.LEAD, True)
SHARED = CaseAccess(Relation.SHARED)
SHARED_HEALTH = CaseAccess(Relation.SHARED, True)


def entry(author="health", category="general", visibility="shared", kind=None, condition_agency=None):
    return EntryFacts(author, category, visibility, kind, condition_agency)


def test_shared_general_entry_is_seen_by_lead_and_consenting_participants():
    assert can_see_entry(staff("police"), LEAD, entry())
    assert can_see_entry(staff("nav", "nav"), SHARED, entry())


@pytest.mark.parametrize("access", [LEAD, LEAD_HEALTH, SHARED, SHARED_HEALTH])
def test_agency_entry_is_seen_by_no_other_agency_not_even_the_lead(access):
    assert not can_see_entry(staff("police"), access, entry(visibility="agency"))
    assert not can_see_entry(staff("police"), access, entry(visibility="agency", category="health"))


@pytest.mark.parametrize("access", [LEAD, SHARED])
def test_author_always_sees_its_own_entries(access):
    for visibility in ("agency", "shared"):
        for category in ("general", "health"):
            assert can_see_entry(staff("health", "school_health"), access, entry("health", category, visibility))


def test_health_entry_needs_a_health_consent_even_for_the_lead():
    assert not can_see_entry(staff("police"), LEAD, entry(category="health"))
    assert can_see_entry(staff("police"), LEAD_HEALTH, entry(category="health"))
    assert not can_see_entry(staff("nav", "nav"), SHARED, entry(category="health"))
    assert can_see_entry(staff("nav", "nav"), SHARED_HEALTH, entry(category="health"))


def test_drug_test_reaches_the_responsible_agency_whatever_its_visibility_and_consent():
    drug_test = entry("police", "health", "agency", kind="drug_test", condition_agency="nav")
    assert can_see_entry(staff("nav", "nav"), SHARED, drug_test)
    # but no one else: not a third agency even with a health consent
    assert not can_see_entry(staff("cw", "child_welfare"), SHARED_HEALTH, drug_test)


def test_drug_test_exception_is_only_for_drug_tests():
    meeting = entry("police", "health", "agency", kind="meeting", condition_agency="nav")
    assert not can_see_entry(staff("nav", "nav"), SHARED_HEALTH, meeting)


@pytest.mark.parametrize("relation", [Relation.HIDDEN, Relation.CONSENT_REQUIRED])
def test_no_entry_is_seen_without_case_access(relation):
    access = CaseAccess(relation, True)
    principal = staff("nav", "nav")
    assert not can_see_entry(principal, access, entry("nav"))  # not even its own
    assert not can_see_entry(principal, access, entry("police", "health", "agency", "drug_test", "nav"))


def test_unknown_visibility_or_category_is_denied():
    assert not can_see_entry(staff("police"), LEAD_HEALTH, entry(visibility="public"))
    assert not can_see_entry(staff("police"), LEAD_HEALTH, entry(category="secret"))


# --- youth_visible ---------------------------------------------------------------------------


def test_youth_visible_to_creating_agency_without_any_case():
    assert youth_visible(staff("police2"), "police2", [])


def test_youth_hidden_from_other_agency_without_a_case():
    assert not youth_visible(staff("police"), "police2", [])


@pytest.mark.parametrize(
    "relation,visible",
    [(Relation.LEAD, True), (Relation.SHARED, True), (Relation.CONSENT_REQUIRED, False), (Relation.HIDDEN, False)],
)
def test_youth_visible_through_a_readable_case_only(relation, visible):
    assert youth_visible(staff("nav", "nav"), "police", [CaseAccess(Relation.HIDDEN), CaseAccess(relation)]) is visible


@pytest.mark.parametrize("principal", [ADMIN, AUDITOR])
def test_youth_never_visible_to_admin_or_auditor(principal):
    assert not youth_visible(principal, "police", [CaseAccess(Relation.LEAD)])


# --- properties ------------------------------------------------------------------------------

AGENCIES = ["police", "health", "nav", "cw", "slt", "west"]
MUNICIPALITIES = ["0301", "4601", "5001"]
ALL_SCOPES = sorted(set().union(*ROLE_SCOPES.values()))
DAYS = st.dates(min_value=TODAY - timedelta(days=10), max_value=TODAY + timedelta(days=10))

principals = st.builds(
    Principal,
    subject=st.just("someone"),
    role=st.sampled_from([*sorted(STAFF_ROLES | NO_CONTENT_ROLES), "", "guest"]),
    agency=st.one_of(st.none(), st.sampled_from(AGENCIES)),
    municipalities=st.frozensets(st.sampled_from(MUNICIPALITIES)),
    scopes=st.frozensets(st.sampled_from(ALL_SCOPES)),
)
consents = st.builds(
    ConsentFacts,
    agencies=st.frozensets(st.sampled_from(AGENCIES), min_size=1),
    covers_health=st.booleans(),
    given_on=DAYS,
    expires_on=DAYS,
    withdrawn=st.booleans(),
)


@st.composite
def case_facts(draw):
    lead = draw(st.sampled_from(AGENCIES))
    others = draw(st.frozensets(st.sampled_from(AGENCIES)))
    return CaseFacts(
        draw(st.sampled_from(MUNICIPALITIES)), lead, others | {lead}, tuple(draw(st.lists(consents, max_size=4)))
    )


@settings(max_examples=500, deadline=None)
@given(principal=principals, facts=case_facts(), today=DAYS, action=st.sampled_from(list(Action)))
def test_authorize_never_allows_hidden_consent_required_or_no_content_roles(principal, facts, today, action):
    access = case_access(principal, facts, today)
    decision = authorize(principal, action, access)
    if access.relation in (Relation.HIDDEN, Relation.CONSENT_REQUIRED):
        assert not decision.allowed
    if principal.role in NO_CONTENT_ROLES:
        assert not decision.allowed and decision.status == 403
    if decision.allowed:
        # what an allow implies, read straight off the facts
        assert principal.role in STAFF_ROLES and action.scope in principal.scopes
        assert facts.municipality in principal.municipalities and principal.agency in facts.participants
        consented = any(principal.agency in c.agencies and c.active_on(today) for c in facts.consents)
        assert principal.agency == facts.lead_agency or consented
        if action.lead_only:
            assert principal.agency == facts.lead_agency or principal.role == "coordinator"
    else:
        assert decision.status in (403, 404)


@settings(max_examples=300, deadline=None)
@given(
    principal=principals,
    action=st.sampled_from(list(Action)),
    relation=st.sampled_from([Relation.HIDDEN, Relation.CONSENT_REQUIRED]),
    health=st.booleans(),
)
def test_authorize_never_allows_hidden_or_consent_required_access(principal, action, relation, health):
    assert not authorize(principal, action, CaseAccess(relation, health)).allowed


@settings(max_examples=300, deadline=None)
@given(
    principal=principals,
    facts=case_facts(),
    today=DAYS,
    author=st.sampled_from(AGENCIES),
    category=st.sampled_from(["general", "health"]),
    visibility=st.sampled_from(["agency", "shared"]),
    kind=st.sampled_from([None, "meeting", "drug_test"]),
    condition_agency=st.one_of(st.none(), st.sampled_from(AGENCIES)),
)
def test_entries_are_never_seen_beyond_the_rules(
    principal, facts, today, author, category, visibility, kind, condition_agency
):
    access = case_access(principal, facts, today)
    seen = can_see_entry(principal, access, EntryFacts(author, category, visibility, kind, condition_agency))
    if not seen:
        return
    assert access.relation in (Relation.LEAD, Relation.SHARED)
    responsible = kind == "drug_test" and condition_agency == principal.agency
    if not responsible and author != principal.agency:
        assert visibility == "shared"
        if category == "health":
            assert any(
                principal.agency in c.agencies and c.covers_health and c.active_on(today) for c in facts.consents
            )


# --- changing a youth's details ----------------------------------------------------------------


@pytest.mark.parametrize(
    "who,created_by,accesses,expected",
    [
        (staff("police"), "police", [], (True, 200)),  # registered it, no case yet
        (staff("health", "school_health"), "police", [], (False, 404)),  # never sees it
        (staff("police"), "police", [CaseAccess(Relation.CONSENT_REQUIRED)], (False, 403)),  # registered, not lead
        (staff("health", "school_health"), "police", [CaseAccess(Relation.SHARED)], (False, 403)),
        (staff("slt", "coordinator"), "police", [CaseAccess(Relation.SHARED)], (True, 200)),
        (staff("nav", "nav"), "police", [CaseAccess(Relation.SHARED), CaseAccess(Relation.LEAD)], (True, 200)),
    ],
)
def test_youth_changes_follow_the_rule_of_case_changes(who, created_by, accesses, expected):
    decision = youth_change_decision(who, created_by, accesses)
    assert (decision.allowed, decision.status) == expected
    if decision.status == 403:
        assert decision.reason == "lead-agency-required"


# --- refusals and emergency access (README "Emergency access" and "Consent refusals") ------------------------------


def test_a_refusal_is_never_active():
    from casesvc.policy import ConsentFacts as Facts

    refusal = Facts(frozenset({"nav"}), True, YESTERDAY, TOMORROW, False, refused=True)
    assert not refusal.active_on(TODAY)
    assert case_access(staff("nav", "nav"), case(refusal), TODAY).relation is Relation.CONSENT_REQUIRED


def _emergency(user, hours_ago=1, hours_left=3):
    from datetime import datetime

    from casesvc.policy import EmergencyFacts

    now = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
    return now, EmergencyFacts(user, now - timedelta(hours=hours_ago), now + timedelta(hours=hours_left))


def test_an_emergency_access_reads_with_health_and_writes_nothing():
    nav = staff("nav", "nav")
    now, grant = _emergency(nav.subject)
    facts = CaseFacts("0301", "police", frozenset({"police", "nav"}), (), (grant,))
    access = case_access(nav, facts, TODAY, now)
    assert access == CaseAccess(Relation.EMERGENCY, health=True)
    assert authorize(nav, Action.READ_NOTES, access)
    assert authorize(nav, Action.WRITE_NOTE, access).reason == "consent-required"
    assert not can_see_entry(nav, access, EntryFacts("police", "health", "agency"))
    assert can_see_entry(nav, access, EntryFacts("police", "health", "shared"))


def test_an_emergency_access_is_the_users_within_its_hours_only():
    nav = staff("nav", "nav")
    now, grant = _emergency("someone-else")
    facts = CaseFacts("0301", "police", frozenset({"police", "nav"}), (), (grant,))
    assert case_access(nav, facts, TODAY, now).relation is Relation.CONSENT_REQUIRED
    now, ended = _emergency(nav.subject, hours_ago=5, hours_left=-1)
    facts = CaseFacts("0301", "police", frozenset({"police", "nav"}), (), (ended,))
    assert case_access(nav, facts, TODAY, now).relation is Relation.CONSENT_REQUIRED


def test_an_emergency_access_does_not_reach_outside_the_case_rules():
    outsider = staff("cw", "child_welfare")
    now, grant = _emergency(outsider.subject)
    facts = CaseFacts("0301", "police", frozenset({"police", "nav"}), (), (grant,))
    assert case_access(outsider, facts, TODAY, now).relation is Relation.HIDDEN
