"""Problems in the caller's language (README "The API at a glance": languages): with
`Accept-Language: nb` (`nb-NO`, `no`, `nn`, q-values honoured) title, detail and the `errors`
messages are bokmål, English is the default and the fallback, the `type` and the extension
members never change; and no message the code can send lacks its translation."""

from __future__ import annotations

import contextlib
import inspect
import uuid
from pathlib import Path

import marshmallow as ma
import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from casesvc import i18n
from tests.conftest import assert_field_error, assert_problem, assert_unauthorized

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "casesvc" / "translations" / "nb" / "LC_MESSAGES"
NB = {"Accept-Language": "nb"}


def in_nb_and_en(call):
    """The same request in bokmål and in English (no Accept-Language)."""
    return call(NB), call({})


def assert_language(resp, language: str) -> None:
    assert resp.headers["Content-Language"] == language, resp.headers
    assert "Accept-Language" in resp.headers.get("Vary", ""), resp.headers


# --- through HTTP ----------------------------------------------------------------------------


def test_a_404_in_bokmal_keeps_its_type(world):
    url = f"/api/v1/cases/{uuid.uuid4()}"
    nb, en = in_nb_and_en(lambda h: world["police"].get(url, headers=h))
    nb_body, en_body = assert_problem(nb, 404, "not-found"), assert_problem(en, 404, "not-found")
    assert (nb_body["title"], nb_body["detail"]) == ("Ikke funnet", "Saken finnes ikke.")
    assert (en_body["title"], en_body["detail"]) == ("Not Found", "No such case.")
    assert nb_body["type"] == en_body["type"] and nb_body["instance"] == en_body["instance"]
    assert_language(nb, "nb")
    assert_language(en, "en")


def test_a_409_in_bokmal_keeps_its_extension_members(world):
    case = world.case()
    nb, en = in_nb_and_en(
        lambda h: world["police"].post(
            f"/api/v1/cases/{case['id']}/transitions", json={"to": "completed", "reason": "Done"}, headers=h
        )
    )
    nb_body = assert_problem(nb, 409, "transition-not-allowed")
    en_body = assert_problem(en, 409, "transition-not-allowed")
    assert nb_body["title"] == "Konflikt"
    # the values stand where bokmål puts them; the codes are the API's, untranslated
    assert nb_body["detail"] == "En sak kan ikke gå fra open til completed; tillatt: active, withdrawn."
    assert en_body["detail"] == "A case cannot go from open to completed; allowed: active, withdrawn."
    for member in ("current", "to", "allowed"):
        assert nb_body[member] == en_body[member]
    assert nb_body["allowed"] == ["active", "withdrawn"]


def test_a_422_of_the_schema_in_bokmal(world):
    body = {"origin": "rumour", "participants": "health"}
    nb, en = in_nb_and_en(lambda h: world["police"].post("/api/v1/cases", json=body, headers=h))
    nb_body, en_body = assert_field_error(nb, "origin"), assert_field_error(en, "origin")
    assert nb_body["title"] == "Ugyldig inndata" and en_body["title"] == "Unprocessable Content"
    assert nb_body["detail"] == "Forespørselen har ugyldige felt: origin, participants, youth_id."
    assert set(nb_body["errors"]) == set(en_body["errors"]) == {"origin", "participants", "youth_id"}
    assert nb_body["errors"]["youth_id"] == ["Feltet må fylles ut."]
    assert en_body["errors"]["youth_id"] == ["Missing data for required field."]
    assert nb_body["errors"]["participants"] == ["Ikke en gyldig liste."]
    # marshmallow's message with values: the values kept, the words bokmål
    choices = en_body["errors"]["origin"][0].removeprefix("Must be one of: ")
    assert nb_body["errors"]["origin"] == [f"Må være en av: {choices}"]
    assert nb_body["type"] == en_body["type"] == "/problems/validation-error"


def test_a_422_of_a_service_rule_in_bokmal(world):
    youth = world.youth()
    body = {"youth_id": youth["id"], "origin": "police", "participants": ["health", "westhealth"]}
    nb, en = in_nb_and_en(lambda h: world["police"].post("/api/v1/cases", json=body, headers=h))
    nb_body, en_body = assert_field_error(nb, "participants"), assert_field_error(en, "participants")
    assert nb_body["errors"]["participants"] == ["Etaten 'westhealth' betjener ikke kommune 0301."]
    assert en_body["errors"]["participants"] == ["Agency 'westhealth' does not serve municipality 0301."]
    assert nb_body["detail"] == "participants: Etaten 'westhealth' betjener ikke kommune 0301."


def test_a_403_without_consent_in_bokmal(world):
    case = world.case()  # health takes part, and no consent names it
    resp = world["health"].get(f"/api/v1/cases/{case['id']}", headers=NB)
    body = assert_problem(resp, 403, "consent-required")
    assert body["title"] == "Ingen tilgang"
    assert body["detail"].startswith("Samtykke mangler: ")


def test_a_401_in_bokmal_keeps_its_challenge(client):
    nb, en = in_nb_and_en(lambda h: client.get("/api/v1/cases", headers=h))
    nb_body, en_body = assert_unauthorized(nb), assert_unauthorized(en)
    assert nb_body["title"] == "Ikke autentisert" and en_body["title"] == "Unauthorized"
    assert nb_body["detail"] == "Forespørselen må ha et tilgangstoken (Bearer)."
    assert nb.headers["WWW-Authenticate"] == en.headers["WWW-Authenticate"]
    refused = client.get("/api/v1/cases", headers={**NB, "Authorization": "Bearer not-a-token"})
    assert assert_unauthorized(refused)["detail"] == "Tilgangstokenet er ugyldig."


def test_werkzeugs_own_errors_in_bokmal(world, client):
    nowhere = assert_problem(client.get("/api/v1/nowhere", headers=NB), 404, "not-found")
    assert nowhere["detail"] == "Ressursen finnes ikke."
    not_allowed = client.delete("/api/v1/vocabulary", headers=NB)
    assert assert_problem(not_allowed, 405)["title"] == "Metoden er ikke tillatt"
    assert "GET" in not_allowed.headers["Allow"]
    too_large = world["police"].post(
        "/api/v1/youths", data=b"x" * (1024 * 1024 + 1), headers={**NB, "Content-Type": "application/json"}
    )
    body = assert_problem(too_large, 413)
    assert (body["title"], body["detail"]) == ("For stort innhold", "Innholdet i forespørselen er for stort.")
    not_json = world["police"].post(
        "/api/v1/youths", data="name=x", headers={**NB, "Content-Type": "application/x-www-form-urlencoded"}
    )
    assert assert_problem(not_json, 415)["detail"] == "Send innholdet som application/json."
    bad_json = world["police"].post("/api/v1/youths", data="{", headers={**NB, "Content-Type": "application/json"})
    assert assert_problem(bad_json, 400)["detail"] == "Innholdet i forespørselen er ikke gyldig JSON."


@pytest.mark.parametrize(
    "header,language",
    [
        ("nb", "nb"),
        ("nb-NO", "nb"),
        ("NB-no", "nb"),
        ("no", "nb"),
        ("no-NO", "nb"),
        ("nn-NO", "nb"),
        ("en", "en"),
        ("en-GB", "en"),
        ("", "en"),
        ("de", "en"),
        ("sv, da;q=0.8", "en"),
        ("de, nb;q=0.5", "nb"),  # the first language served, not the first named
        ("en;q=0.9, nb", "nb"),
        ("nb;q=0.5, en", "en"),
        ("en;q=0.5, nb;q=0.8", "nb"),
        ("nb;q=0", "en"),
        ("nb;q=0, *", "en"),
        ("en;q=0, *", "nb"),
        ("*", "en"),
        ("nb;q=2", "en"),  # an invalid q-value is no preference
    ],
)
def test_the_language_is_negotiated(client, header, language):
    resp = client.get("/api/v1/cases", headers={"Accept-Language": header} if header else {})
    body = assert_unauthorized(resp)
    assert_language(resp, language)
    assert body["title"] == {"nb": "Ikke autentisert", "en": "Unauthorized"}[language]


def test_an_answer_that_is_no_problem_says_no_language(world):
    resp = world["police"].get("/api/v1/cases", headers=NB)
    assert resp.status_code == 200
    assert "Content-Language" not in resp.headers


# --- the catalogue ---------------------------------------------------------------------------


def _source_messages() -> set[str]:
    with open(ROOT / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    return {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT / "casesvc"), method_map, options_map, keywords=DEFAULT_KEYWORDS
        )
        if isinstance(message, str)
    }


def _po():
    with open(CATALOGUE / "messages.po", "rb") as po:
        return read_po(po)


def test_every_message_of_the_code_has_a_bokmal_translation():
    """`make messages` brings a new message into the catalogue; this fails until it is translated."""
    catalogue = {message.id: message for message in _po() if message.id}
    in_code = _source_messages()
    assert len(in_code) > 200  # the extraction found the code's messages
    missing = sorted(in_code - set(catalogue))
    assert not missing, f"not in the catalogue (run `make messages`): {missing}"
    untranslated = sorted(m for m in in_code if not catalogue[m].string or catalogue[m].fuzzy)
    assert not untranslated, f"no bokmål translation (empty or fuzzy): {untranslated}"
    stale = sorted(set(catalogue) - in_code)
    assert not stale, f"in the catalogue but no longer in the code (run `make messages`): {stale}"


def test_every_translation_keeps_the_values_of_its_message():
    problems = {message.id: [str(error) for error in errors] for message, errors in _po().check()}
    assert not problems, problems


def test_the_compiled_catalogue_is_the_current_one():
    """The .mo the service reads holds what the .po says (`make install` compiles it)."""
    compiled = CATALOGUE / "messages.mo"
    assert compiled.exists(), "casesvc/translations/nb/LC_MESSAGES/messages.mo is missing: run `make install`"
    with open(compiled, "rb") as mo:
        served = {message.id: message.string for message in read_mo(mo) if message.id}
    kept = {message.id: message.string for message in _po() if message.id and not message.fuzzy}
    assert served == kept, "the compiled catalogue is stale: run `make install`"


class _Sample(dict):
    """Values for a message's fields: the ones given, "x" for any other (`{input}`, `{choices}`)."""

    def __missing__(self, key):
        return "x"


def _marshmallows_messages() -> set[str]:
    """Every message the installed marshmallow can give a client: each field's, the schema's, and
    each validator's, as they are raised."""
    messages = set(getattr(ma.Schema, "_default_error_messages", {}).values())
    for _name, cls in inspect.getmembers(ma.fields, inspect.isclass):
        for template in getattr(cls, "default_error_messages", {}).values():
            obj_types = (
                [cls.OBJ_TYPE] if isinstance(getattr(cls, "OBJ_TYPE", None), str) else ["datetime", "date", "time"]
            )
            for obj_type in obj_types:
                for awareness in ("aware", "naive"):
                    messages.add(template.format_map(_Sample(obj_type=obj_type, awareness=awareness)))
    v = ma.validate
    raised = [
        (v.Range(min=1), 0),
        (v.Range(min=1, min_inclusive=False), 1),
        (v.Range(max=1), 2),
        (v.Range(max=1, max_inclusive=False), 1),
        (v.Range(min=1, max=3), 4),
        (v.Range(min=1, max=3, min_inclusive=False), 4),
        (v.Range(min=1, max=3, max_inclusive=False), 4),
        (v.Range(min=1, max=3, min_inclusive=False, max_inclusive=False), 4),
        (v.Length(min=2), "a"),
        (v.Length(max=1), "ab"),
        (v.Length(min=2, max=3), "a"),
        (v.Length(equal=2), "a"),
        (v.OneOf(["a", "b"]), "c"),
        (v.NoneOf(["a"]), "a"),
        (v.Equal("a"), "b"),
        (v.Regexp("a"), "b"),
        (v.ContainsOnly(["a"]), ["b"]),
        (v.ContainsNoneOf(["a"]), ["a"]),
        (v.Email(), "x"),
        (v.URL(), "x"),
        (v.Predicate("isdigit"), "a"),
        (v.And(v.Length(max=0)), "a"),
    ]
    exercised = {type(validator) for validator, _value in raised}
    for _name, cls in inspect.getmembers(v, inspect.isclass):
        if (
            issubclass(cls, v.Validator)
            and cls is not v.Validator
            and any(isinstance(value, str) and "message" in name for name, value in vars(cls).items())
        ):
            assert cls in exercised, f"marshmallow has a validator this test does not know: {cls.__name__}"
    for validator, value in raised:
        with pytest.raises(ma.ValidationError) as refused:
            validator(value)
        messages.update(refused.value.messages)
    return messages


@contextlib.contextmanager
def unknown_texts_allowed(app):
    """For a test that hands texts of no catalogue to `localize` on purpose."""
    collected = app.extensions.pop("casesvc.i18n.unknown")
    try:
        yield
    finally:
        app.extensions["casesvc.i18n.unknown"] = collected


def test_every_message_of_marshmallow_has_a_bokmal_translation(app):
    messages = _marshmallows_messages()
    assert "Missing data for required field." in messages and "Must be greater than or equal to 1." in messages
    with app.test_request_context(headers=NB), unknown_texts_allowed(app):
        untranslated = sorted(m for m in messages if i18n.localize(m) == m)
    assert not untranslated, f"marshmallow messages without bokmål (casesvc.i18n.MARSHMALLOW_MESSAGES): {untranslated}"
    with app.test_request_context(headers=NB):
        assert (
            i18n.localize("Must be greater than or equal to 1 and less than or equal to 200.")
            == "Må være fra og med 1 til og med 200."
        )
        assert i18n.localize("Longer than maximum length 2000.") == "Lengre enn største tillatte lengde, 2000."
    with app.test_request_context():
        assert i18n.localize("Missing data for required field.") == "Missing data for required field."


def test_a_text_of_no_catalogue_is_sent_as_it_is_and_noticed(app):
    with app.test_request_context(headers=NB):
        assert i18n.localize("Something no catalogue holds.") == "Something no catalogue holds."
        assert app.extensions["casesvc.i18n.unknown"] == ["Something no catalogue holds."]
        app.extensions["casesvc.i18n.unknown"].clear()  # noticed, as tests/conftest.py would
