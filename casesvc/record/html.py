"""The youth's record as a printable page in bokmål: plain HTML and CSS, no script, no external
asset, written piece by piece as the parts are read."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime
from html import escape

from casesvc.common.timeutil import OSLO
from casesvc.record.render import access_log_entry
from casesvc.record.service import RecordPlan
from casesvc.vocabulary import VOCABULARY

STYLE = """
body { font-family: Georgia, "Times New Roman", serif; margin: 2rem auto; max-width: 60rem; color: #111; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; border-bottom: 1px solid #999; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin-top: 1.2rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; margin: 0.4rem 0 1rem; }
th, td { border: 1px solid #bbb; padding: 0.25rem 0.4rem; text-align: left; vertical-align: top; }
th { background: #eee; } dl { display: grid; grid-template-columns: 14rem 1fr; gap: 0.2rem 1rem; }
dt { font-weight: bold; } .note { font-size: 0.9rem; color: #333; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"""

ACCESS = {"lead": "ansvarlig tjeneste", "shared": "etter samtykke"}


def _label(group: str, code) -> str:
    if code is None:
        return ""
    return VOCABULARY.get(group, {}).get(code, (str(code),))[0]


def _when(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return value.astimezone(OSLO).strftime("%d.%m.%Y kl. %H:%M")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    return str(value)


def _e(value) -> str:
    return escape("" if value is None else str(value))


def _table(headers: tuple[str, ...], rows: Iterable[Iterable], empty: str) -> Iterator[str]:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    yield f"<table><thead><tr>{head}</tr></thead><tbody>"
    count = 0
    for row in rows:
        count += 1
        yield "<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>"
    if not count:
        yield f'<tr><td colspan="{len(headers)}">{_e(empty)}</td></tr>'
    yield "</tbody></table>"


def html_record(plan: RecordPlan) -> Iterator[str]:
    youth = plan.youth
    if youth is None:  # deleted meanwhile (retention)
        yield '<!DOCTYPE html><html lang="nb"><body><p>Ingen opplysninger.</p></body></html>'
        return
    name = f"{youth.given_name} {youth.family_name}"
    yield (
        '<!DOCTYPE html><html lang="nb"><head><meta charset="utf-8">'
        f"<title>Innsyn – {_e(name)}</title><style>{STYLE}</style></head><body>"
    )
    yield (
        f"<h1>Innsyn: opplysninger om {_e(name)}</h1>"
        f'<p class="note">Utskrift laget {_e(_when(plan.generated_at))} av tjenesten {_e(plan.principal.agency)}, '
        "etter personvernforordningen artikkel 15 (retten til innsyn).</p>"
    )
    yield "<h2>Personopplysninger</h2><dl>"
    for label, value in (
        ("Fornavn", youth.given_name),
        ("Etternavn", youth.family_name),
        ("Fødselsdato", _when(youth.birth_date)),
        ("Fødselsnummer", youth.national_id),
        ("Kommunenummer", youth.municipality),
        ("Skole", youth.school),
        ("Registrert av", youth.created_by_agency),
        ("Registrert", _when(youth.created_at)),
    ):
        yield f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>"
    yield "</dl><h3>Foresatte</h3>"
    yield from _table(
        ("Navn", "Relasjon", "Telefon", "E-post"),
        ((g.name, _label("guardian_relation", g.relation), g.phone, g.email) for g in youth.guardians),
        "Ingen foresatte registrert.",
    )
    count = 0
    for record in plan.cases():
        count += 1
        yield from _case(record, count)
    if not count:
        yield "<h2>Saker</h2><p>Ingen saker.</p>"
    yield (
        '<h2>Tilgangslogg</h2><p class="note">Hvem (tjeneste, rolle, bruker) som har lest eller endret '
        "opplysningene, og når. «Nødtilgang» merker oppslag gjort med nødtilgang uten samtykke.</p>"
    )
    yield from _table(
        ("Tidspunkt", "Tjeneste", "Rolle", "Bruker", "Handling", "Sak", "Utfall", "Grunnlag"),
        _log_rows(plan),
        "Ingen oppslag registrert.",
    )
    yield (
        "<h2>Hva utskriften ikke inneholder</h2><p>Opplysninger som andre tjenester holder for seg selv "
        "(kun egen tjeneste), og helseopplysninger fra andre tjenester som ikke er delt med denne tjenesten "
        "etter samtykke, er ikke med: hver tjeneste svarer for sine egne opplysninger, og innsyn i dem "
        "må be om hos dem. Saker denne tjenesten ikke har tilgang til, er heller ikke med.</p>"
    )
    yield "</body></html>"


def _log_rows(plan: RecordPlan):
    for row in plan.access_log():
        entry = access_log_entry(row)
        yield (
            _when(entry["at"]),
            entry["actor_agency"],
            _label("role", entry["actor_role"]),
            entry["actor"],
            entry["action"],
            entry["case_id"],
            _label("audit_outcome", entry["outcome"]),
            "Nødtilgang" if entry["basis"] == "emergency" else "",
        )


def _case(record, number: int) -> Iterator[str]:
    case = record.case
    yield f"<h2>Sak {number}</h2><dl>"
    for label, value in (
        ("Saks-id", case.id),
        ("Kommunenummer", case.municipality),
        ("Opphav", _label("case_origin", case.origin)),
        ("Sammendrag", case.summary),
        ("Ansvarlig tjeneste", case.lead_agency),
        ("Deltakende tjenester", ", ".join(case.participant_codes)),
        ("Status", _label("case_status", case.status)),
        ("Åpnet", _when(case.opened_at)),
        ("Avsluttet", _when(case.closed_at)),
        ("Begrunnelse", case.status_reason),
        ("Denne tjenestens tilgang", ACCESS.get(record.access.relation.value, "")),
    ):
        yield f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>"
    yield "</dl><h3>Reaksjoner</h3>"
    yield from _table(
        ("Type", "Grunnlag", "Fra", "Til", "Status", "Vilkår", "Signaturer"),
        (
            (
                _label("reaction_type", r.type),
                _label("legal_basis", r.legal_basis),
                _when(r.starts_on),
                _when(r.ends_on),
                _label("reaction_status", r.status),
                "; ".join(
                    f"{_label('condition_kind', c.kind)}: {c.description or ''} ({c.responsible_agency})"
                    for c in r.conditions
                ),
                "; ".join(f"{_label('signature_party', s.party)} {_when(s.signed_on)}" for s in r.signatures),
            )
            for r in record.reactions
        ),
        "Ingen reaksjoner.",
    )
    yield "<h3>Samtykker</h3>"
    yield from _table(
        ("Vedtak", "Gitt av", "Dato", "Utløper", "Formål", "Tjenester", "Kategorier", "Trukket"),
        (
            (
                _label("consent_decision", c.decision),
                _label("consent_given_by", c.given_by),
                _when(c.given_on),
                _when(c.expires_on_shown),
                c.purpose,
                ", ".join(c.agencies),
                ", ".join(_label("category", k) for k in c.categories),
                _when(c.withdrawn_at),
            )
            for c in record.consents
        ),
        "Ingen samtykker.",
    )
    yield "<h3>Hendelser</h3>"
    yield from _table(
        ("Tidspunkt", "Type", "Resultat", "Sammendrag", "Kategori", "Synlighet", "Skrevet av"),
        (
            (
                _when(e.occurred_at),
                _label("event_kind", e.kind),
                _label("drug_test_result", e.result),
                e.summary,
                _label("category", e.category),
                _label("visibility", e.visibility),
                e.author_agency,
            )
            for e in record.events
        ),
        "Ingen hendelser.",
    )
    if record.notes is not None:
        yield "<h3>Notater</h3>"
        yield from _table(
            ("Skrevet", "Tekst", "Kategori", "Synlighet", "Skrevet av"),
            (
                (
                    _when(n.created_at),
                    n.body,
                    _label("category", n.category),
                    _label("visibility", n.visibility),
                    n.author_agency,
                )
                for n in record.notes
            ),
            "Ingen notater.",
        )
