"""The reminder rules as pure functions (casesvc/reminders/rules.py) and the webhook helpers
(casesvc/reminders/webhooks.py): dates in Europe/Oslo, who gets what, the signature, backoff and
which URLs may be targets."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, strategies as st

from casesvc.reminders import rules, webhooks


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- Oslo days ---------------------------------------------------------------------------------


def test_a_date_is_due_at_the_start_of_that_day_in_oslo_in_winter():
    assert rules.day_start(date(2027, 1, 15)) == utc(2027, 1, 14, 23, 0)


def test_a_date_is_due_at_the_start_of_that_day_in_oslo_in_summer():
    assert rules.day_start(date(2027, 7, 15)) == utc(2027, 7, 14, 22, 0)


def test_an_instant_late_in_the_utc_evening_is_the_next_day_in_oslo():
    assert rules.oslo_date(utc(2027, 7, 14, 22, 30)) == date(2027, 7, 15)


@pytest.mark.parametrize(
    "start, months, expected",
    [
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2027, 11, 15), 3, date(2028, 2, 15)),
        (date(2027, 5, 31), 3, date(2027, 8, 31)),
        (date(2027, 3, 10), -3, date(2026, 12, 10)),
    ],
)
def test_calendar_months_keep_the_day_or_take_the_months_last(start, months, expected):
    assert rules.add_months(start, months) == expected


# --- condition_due -----------------------------------------------------------------------------


def test_condition_due_counts_from_starts_on_when_nothing_was_logged():
    assert rules.condition_due(14, date(2027, 3, 1), None) == rules.day_start(date(2027, 3, 15))


def test_condition_due_counts_from_the_oslo_date_of_the_last_matching_event():
    # 23:30 UTC on 9 March is already 10 March in Oslo
    assert rules.condition_due(7, date(2027, 1, 1), utc(2027, 3, 9, 23, 30)) == rules.day_start(date(2027, 3, 17))


def test_a_missed_or_invalid_drug_test_does_not_answer_the_condition():
    assert not rules.answers_condition("drug_test", "missed")
    assert not rules.answers_condition("drug_test", "invalid")
    assert rules.answers_condition("drug_test", "negative")
    assert rules.answers_condition("drug_test", "positive")
    assert rules.answers_condition("meeting", None)


# --- reaction_ending, consent_expiring, conversation_scheduled ------------------------------------


def test_reaction_ending_is_due_the_given_days_before_the_end():
    assert rules.reaction_ending(date(2027, 9, 30), 14) == rules.day_start(date(2027, 9, 16))


def test_consent_expiring_is_due_the_given_days_before_expiry():
    assert rules.consent_expiring(date(2027, 6, 30), 30) == rules.day_start(date(2027, 5, 31))


def test_conversation_scheduled_is_due_a_day_before_the_time_it_is_scheduled_for():
    assert rules.conversation_scheduled(utc(2027, 4, 8, 12, 0), 1) == utc(2027, 4, 7, 12, 0)


# --- no_recent_contact -------------------------------------------------------------------------


def test_no_recent_contact_counts_from_the_opening_when_there_is_no_event():
    assert rules.no_recent_contact(utc(2027, 1, 10, 9), None, 30) == rules.day_start(date(2027, 2, 9))


def test_no_recent_contact_counts_from_the_last_event():
    assert rules.no_recent_contact(utc(2027, 1, 10, 9), utc(2027, 2, 1, 9), 30) == rules.day_start(date(2027, 3, 3))


def test_an_event_dated_before_the_opening_does_not_move_no_recent_contact_back():
    assert rules.no_recent_contact(utc(2027, 1, 10, 9), utc(2026, 12, 1, 9), 30) == rules.day_start(date(2027, 2, 9))


# --- missed_test ---------------------------------------------------------------------------------


def test_a_missed_test_is_due_the_same_oslo_day():
    assert rules.missed_test(utc(2027, 5, 4, 13, 0)) == rules.day_start(date(2027, 5, 4))


def test_a_missed_test_goes_to_the_lead_agency_not_the_condition_agency():
    assert rules.assignee("missed_test", "police", responsible_agency="health") == "police"


# --- age_threshold -------------------------------------------------------------------------------


def test_turning_16_while_the_case_is_open_is_due_on_the_birthday():
    born = date(2011, 6, 20)
    assert rules.age_threshold(born, date(2027, 1, 5), date(2027, 6, 20)) == (16, rules.day_start(date(2027, 6, 20)))


def test_no_age_threshold_before_the_birthday():
    assert rules.age_threshold(date(2011, 6, 20), date(2027, 1, 5), date(2027, 6, 19)) is None


def test_a_birthday_before_the_case_was_opened_is_no_reminder():
    assert rules.age_threshold(date(2011, 6, 20), date(2027, 7, 1), date(2027, 7, 2)) is None


def test_turning_18_is_the_latest_threshold():
    born = date(2009, 2, 1)
    assert rules.age_threshold(born, date(2024, 1, 1), date(2027, 2, 1)) == (18, rules.day_start(date(2027, 2, 1)))


def test_a_youth_born_on_29_february_has_the_birthday_on_28_february_in_other_years():
    found = rules.age_threshold(date(2012, 2, 29), date(2027, 1, 1), date(2028, 3, 1))
    assert found == (16, rules.day_start(date(2028, 2, 29)))
    assert rules.age_threshold(date(2008, 2, 29), date(2025, 1, 1), date(2026, 3, 1)) == (
        18,
        rules.day_start(date(2026, 2, 28)),
    )


# --- plan_review ---------------------------------------------------------------------------------


def test_no_plan_review_in_the_first_three_months():
    assert rules.plan_review(date(2027, 1, 15), date(2027, 4, 14), 3) is None


def test_a_plan_is_reviewed_every_three_months_from_its_start():
    assert rules.plan_review(date(2027, 1, 15), date(2027, 4, 15), 3) == rules.day_start(date(2027, 4, 15))
    assert rules.plan_review(date(2027, 1, 15), date(2027, 9, 1), 3) == rules.day_start(date(2027, 7, 15))


# --- escalation and assignees --------------------------------------------------------------------


def test_a_reminder_escalates_only_when_still_pending_the_given_days_after_due():
    due = utc(2027, 3, 1, 8)
    made = due - timedelta(days=5)
    assert not rules.should_escalate("condition_due", "pending", due, made, due + timedelta(days=3, seconds=-1), 3)
    assert rules.should_escalate("condition_due", "pending", due, made, due + timedelta(days=3), 3)
    assert not rules.should_escalate("condition_due", "acknowledged", due, made, due + timedelta(days=10), 3)
    assert not rules.should_escalate("escalation", "pending", due, made, due + timedelta(days=10), 3)


def test_a_reminder_created_already_overdue_gives_its_assignee_the_same_days_before_escalating():
    due = utc(2027, 3, 1, 8)
    made = due + timedelta(days=20)
    assert rules.escalation_due(due, made, 3) == made + timedelta(days=3)
    assert not rules.should_escalate("condition_due", "pending", due, made, made + timedelta(days=2), 3)
    assert rules.should_escalate("condition_due", "pending", due, made, made + timedelta(days=3), 3)


def test_the_coordinator_agency_is_a_coordinator_participant_else_the_lead():
    assert rules.coordinator_agency("police", [("police", "police"), ("slt", "coordinator")]) == "slt"
    assert rules.coordinator_agency("police", [("police", "police"), ("health", "school_health")]) == "police"
    assert rules.coordinator_agency("police", [("slt2", "coordinator"), ("slt1", "coordinator")]) == "slt1"


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("condition_due", "health"),
        ("escalation", "slt"),
        ("manual", "nav"),
        ("reaction_ending", "police"),
        ("consent_expiring", "police"),
        ("no_recent_contact", "police"),
        ("conversation_scheduled", "police"),
        ("age_threshold", "police"),
        ("plan_review", "police"),
    ],
)
def test_each_kind_goes_to_the_agency_the_contract_names(kind, expected):
    assert rules.assignee(kind, "police", responsible_agency="health", coordinator="slt", named="nav") == expected


# --- identity ------------------------------------------------------------------------------------


def test_the_dedupe_key_is_rule_source_and_oslo_due_date():
    assert rules.dedupe_key("condition_due", "c1", utc(2027, 7, 14, 22, 0)) == "condition_due:c1:2027-07-15"


def test_two_due_times_on_the_same_oslo_day_share_a_key_and_other_days_do_not():
    a = rules.dedupe_key("k", "s", utc(2027, 7, 14, 22, 0))
    assert a == rules.dedupe_key("k", "s", utc(2027, 7, 15, 21, 59))
    assert a != rules.dedupe_key("k", "s", utc(2027, 7, 15, 22, 0))


def test_advisory_lock_ids_are_stable_signed_64_bit_and_distinct():
    ids = {rules.advisory_lock_id(name) for name in ("condition_due", "escalation", "plan_review")}
    assert len(ids) == 3
    assert all(-(2**63) <= i < 2**63 for i in ids)
    assert rules.advisory_lock_id("escalation") == rules.advisory_lock_id("escalation")


# --- webhooks: signature --------------------------------------------------------------------------

SECRET = "a-test-webhook-secret"


def test_the_signature_is_hmac_sha256_of_the_body_as_sent():
    body, headers = webhooks.signed_request(SECRET, b'{"event":"reminder.due"}', "d1", 1700000000)
    assert body == b'{"event":"reminder.due","timestamp":1700000000}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Casesvc-Signature"] == "sha256=" + expected


def _signed(body: bytes, timestamp: int) -> tuple[bytes, str]:
    sent, headers = webhooks.signed_request(SECRET, body, "d1", timestamp)
    return sent, headers["X-Casesvc-Signature"]


def test_a_receiver_accepts_a_fresh_correct_signature():
    body, signature = _signed(b'{"a":1}', 1700000000)
    assert webhooks.verify(SECRET, "1700000000", signature, body, now=1700000100)


def test_a_changed_body_timestamp_or_secret_fails_verification():
    body, signature = _signed(b'{"a":1}', 1700000000)
    assert not webhooks.verify(SECRET, "1700000000", signature, body.replace(b'"a":1', b'"a":2'), now=1700000000)
    assert not webhooks.verify(SECRET, "1700000001", signature, body, now=1700000000)
    assert not webhooks.verify("another-secret-entirely", "1700000000", signature, body, now=1700000000)


def test_a_replayed_old_delivery_fails_verification():
    body, signature = _signed(b'{"a":1}', 1700000000)
    assert not webhooks.verify(SECRET, "1700000000", signature, body, now=1700000000 + 301)


def test_the_payload_holds_ids_kind_and_due_time_only():
    body = webhooks.payload("r1", "c1", "manual", utc(2027, 1, 5, 8))
    assert body == (
        '{"event":"reminder.due","reminder_id":"r1","case_id":"c1","kind":"manual","due_at":"2027-01-05T08:00:00Z"}'
    )


def test_the_headers_carry_timestamp_signature_and_delivery_id():
    body, headers = webhooks.signed_request(SECRET, b"{}", "d1", 1700000000)
    assert headers["X-Casesvc-Timestamp"] == "1700000000"
    assert headers["X-Casesvc-Signature"] == webhooks.sign(SECRET, body)
    assert headers["X-Casesvc-Delivery"] == "d1"
    assert headers["Content-Type"] == "application/json"


@given(
    st.dictionaries(st.text(max_size=10).filter(lambda k: k != "timestamp"), st.integers(), max_size=5),
    st.integers(min_value=0, max_value=2**40),
)
def test_any_payload_signed_verifies_at_its_own_time(payload, timestamp):
    body, signature = _signed(json.dumps(payload).encode(), timestamp)
    assert webhooks.verify(SECRET, str(timestamp), signature, body, now=timestamp)


# --- webhooks: retries ----------------------------------------------------------------------------


def test_backoff_doubles_from_the_base_up_to_the_cap():
    assert [webhooks.backoff_seconds(n, 60, 600) for n in range(1, 7)] == [60, 120, 240, 480, 600, 600]


def test_a_failure_retries_until_the_last_attempt_then_fails():
    assert webhooks.outcome_after(False, 1, 3) == "retrying"
    assert webhooks.outcome_after(False, 2, 3) == "retrying"
    assert webhooks.outcome_after(False, 3, 3) == "failed"
    assert webhooks.outcome_after(True, 3, 3) == "delivered"


# --- webhooks: targets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "example.org/hook",
        "http://",
        "https://user:pw@example.org/hook",
        "https://example.org/hook#frag",
        "",
        "http://example.org:99999/",
    ],
)
def test_only_plain_http_and_https_urls_are_targets(url):
    assert webhooks.url_problem(url, production=False) is not None


def test_an_https_url_is_a_target():
    assert webhooks.url_problem("https://hooks.example.org/casesvc", production=False) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://172.16.5.4/",
        "http://169.254.169.254/latest",
        "http://[::1]/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "http://100.64.0.1/",
    ],
)
def test_loopback_and_private_targets_are_refused_in_production(url):
    assert webhooks.url_problem(url, production=True) is not None


def test_loopback_targets_are_allowed_outside_production():
    assert webhooks.url_problem("http://127.0.0.1:8080/hook", production=False) is None


def test_a_name_that_resolves_to_a_private_address_is_refused_in_production():
    def resolve(host, port):
        return ["10.0.0.7"]

    assert webhooks.url_problem("https://intranet.example.org/", production=True, resolve=resolve) is not None


def test_a_name_that_resolves_to_public_addresses_is_accepted_in_production():
    def resolve(host, port):
        return ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]

    assert webhooks.url_problem("https://hooks.example.org/", production=True, resolve=resolve) is None


def test_a_name_that_does_not_resolve_is_refused_in_production():
    def resolve(host, port):
        raise OSError("no such name")

    assert webhooks.url_problem("https://nowhere.invalid/", production=True, resolve=resolve) is not None
