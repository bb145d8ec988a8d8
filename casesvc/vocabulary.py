"""Every code of the API with its bokmål and English label: the one place codes are defined.

Models, schemas and `GET /api/v1/vocabulary` all read from here, so a code cannot exist in one
and not the other.
"""

from __future__ import annotations

# code -> (bokmål, English)
VOCABULARY: dict[str, dict[str, tuple[str, str]]] = {
    "agency_kind": {
        "police": ("Politi", "Police"),
        "school_health": ("Skolehelsetjeneste", "School health service"),
        "nav": ("NAV", "NAV (labour and welfare)"),
        "child_welfare": ("Barnevern", "Child welfare"),
        "coordinator": ("SLT-koordinator", "Municipal coordinator"),
    },
    "role": {
        "police": ("Politi", "Police"),
        "school_health": ("Skolehelsetjeneste", "School health service"),
        "nav": ("NAV", "NAV (labour and welfare)"),
        "child_welfare": ("Barnevern", "Child welfare"),
        "coordinator": ("SLT-koordinator", "Municipal coordinator"),
        "admin": ("Administrator", "Administrator"),
        "auditor": ("Revisor", "Auditor"),
    },
    "scope": {
        "cases:read": ("Lese saker", "Read cases"),
        "cases:write": ("Skrive saker", "Write cases"),
        "notes:read": ("Lese notater", "Read notes"),
        "notes:write": ("Skrive notater", "Write notes"),
        "consents:write": ("Registrere samtykker", "Record consents"),
        "reminders:read": ("Lese påminnelser", "Read reminders"),
        "reminders:write": ("Behandle påminnelser", "Handle reminders"),
        "audit:read": ("Lese tilgangslogg", "Read the audit log"),
        "statistics:read": ("Lese statistikk", "Read statistics"),
        "admin": ("Administrasjon", "Administration"),
    },
    "case_origin": {
        "police": ("Politiet", "Police"),
        "school": ("Skolen", "School"),
        "health": ("Helsetjenesten", "Health service"),
        "nav": ("NAV", "NAV"),
        "child_welfare": ("Barnevernet", "Child welfare"),
        "guardian": ("Foresatte", "Guardian"),
        "self": ("Ungdommen selv", "The youth"),
    },
    "case_status": {
        "open": ("Åpen", "Open"),
        "active": ("Aktiv", "Active"),
        "completed": ("Gjennomført", "Completed"),
        "breached": ("Brutt", "Breached"),
        "withdrawn": ("Trukket", "Withdrawn"),
    },
    "reaction_type": {
        "concern_conversation": ("Bekymringssamtale", "Concern conversation"),
        "follow_up_plan": ("Individuell oppfølgingsplan", "Individual follow-up plan"),
        "youth_contract": ("Ungdomskontrakt", "Youth contract"),
        "drug_contract": ("Ruskontrakt", "Drug contract"),
    },
    "legal_basis": {
        "consent": ("Samtykke (frivillig)", "Consent (voluntary)"),
        "conditional_waiver": ("Påtaleunnlatelse med vilkår", "Conditional waiver of prosecution"),
        "youth_follow_up": ("Ungdomsoppfølging i Konfliktrådet", "Youth follow-up (Mediation Service)"),
    },
    "reaction_status": {
        "draft": ("Utkast", "Draft"),
        "active": ("Aktiv", "Active"),
        "completed": ("Gjennomført", "Completed"),
        "breached": ("Brutt", "Breached"),
        "cancelled": ("Avbrutt", "Cancelled"),
    },
    "condition_kind": {
        "drug_test": ("Rusprøve", "Drug test"),
        "meeting": ("Møte", "Meeting"),
        "school_attendance": ("Skoleoppmøte", "School attendance"),
        "curfew": ("Portforbud", "Curfew"),
        "activity": ("Aktivitet", "Activity"),
        "treatment": ("Behandling", "Treatment"),
        "other": ("Annet", "Other"),
    },
    "signature_party": {
        "youth": ("Ungdom", "Youth"),
        "guardian": ("Verge/foresatt", "Guardian"),
        "police": ("Politi", "Police"),
        "coordinator": ("SLT-koordinator", "Municipal coordinator"),
        "school_health": ("Skolehelsetjeneste", "School health service"),
        "nav": ("NAV", "NAV"),
        "child_welfare": ("Barnevern", "Child welfare"),
        "mediation_service": ("Konfliktrådet", "Mediation Service"),
    },
    "event_kind": {
        "meeting": ("Møte", "Meeting"),
        "drug_test": ("Rusprøve", "Drug test"),
        "conversation": ("Samtale", "Conversation"),
        "phone_call": ("Telefonsamtale", "Phone call"),
        "home_visit": ("Hjemmebesøk", "Home visit"),
        "school_report": ("Rapport fra skolen", "School report"),
        "other": ("Annet", "Other"),
    },
    "drug_test_result": {
        "negative": ("Negativ", "Negative"),
        "positive": ("Positiv", "Positive"),
        "missed": ("Ikke møtt", "Missed"),
        "invalid": ("Ugyldig", "Invalid"),
    },
    "category": {
        "general": ("Generell", "General"),
        "health": ("Helseopplysninger", "Health information"),
    },
    "visibility": {
        "agency": ("Kun egen tjeneste", "Own agency only"),
        "shared": ("Delt etter samtykke", "Shared under consent"),
    },
    "consent_given_by": {
        "youth": ("Ungdommen", "The youth"),
        "guardian": ("Verge/foresatt", "Guardian"),
        "both": ("Ungdom og verge", "Youth and guardian"),
    },
    "consent_decision": {
        "given": ("Samtykke gitt", "Consent given"),
        "refused": ("Samtykke nektet", "Consent refused"),
    },
    "reminder_kind": {
        "condition_due": ("Vilkår forfaller", "Condition due"),
        "reaction_ending": ("Reaksjon slutter snart", "Reaction ending"),
        "consent_expiring": ("Samtykke utløper snart", "Consent expiring"),
        "no_recent_contact": ("Ingen kontakt på 30 dager", "No recent contact"),
        "conversation_scheduled": ("Bekymringssamtale i morgen", "Conversation scheduled"),
        "missed_test": ("Uteblitt fra rusprøve", "Missed drug test"),
        "age_threshold": ("Ungdommen fyller 16 eller 18 år", "Age threshold (16 or 18)"),
        "plan_review": ("Gjennomgang av plan", "Plan review"),
        "escalation": ("Eskalering", "Escalation"),
        "manual": ("Manuell påminnelse", "Manual reminder"),
        "emergency_access_review": ("Gjennomgå nødtilgang", "Review an emergency access"),
    },
    "emergency_finding": {
        "justified": ("Begrunnet", "Justified"),
        "unjustified": ("Ikke begrunnet", "Unjustified"),
    },
    "reminder_status": {
        "pending": ("Venter", "Pending"),
        "acknowledged": ("Sett", "Acknowledged"),
        "done": ("Utført", "Done"),
        "dismissed": ("Avvist", "Dismissed"),
    },
    "webhook_outcome": {
        "delivered": ("Levert", "Delivered"),
        "retrying": ("Prøves igjen", "Retrying"),
        "failed": ("Feilet", "Failed"),
    },
    "audit_outcome": {
        "allowed": ("Tillatt", "Allowed"),
        "denied": ("Avvist", "Denied"),
        "error": ("Feil", "Error"),
    },
    "guardian_relation": {
        "mother": ("Mor", "Mother"),
        "father": ("Far", "Father"),
        "guardian": ("Verge", "Guardian"),
        "foster_parent": ("Fosterforelder", "Foster parent"),
        "other": ("Annen", "Other"),
    },
}


def codes(group: str) -> tuple[str, ...]:
    return tuple(VOCABULARY[group])


AGENCY_KINDS = codes("agency_kind")
ROLES = codes("role")
SCOPES = codes("scope")
CASE_ORIGINS = codes("case_origin")
CASE_STATUSES = codes("case_status")
REACTION_TYPES = codes("reaction_type")
CONTRACT_TYPES = ("youth_contract", "drug_contract")
LEGAL_BASES = codes("legal_basis")
REACTION_STATUSES = codes("reaction_status")
CONDITION_KINDS = codes("condition_kind")
CONTROLLING_CONDITIONS = ("drug_test", "curfew")
SIGNATURE_PARTIES = codes("signature_party")
EVENT_KINDS = codes("event_kind")
DRUG_TEST_RESULTS = codes("drug_test_result")
CATEGORIES = codes("category")
VISIBILITIES = codes("visibility")
CONSENT_GIVERS = codes("consent_given_by")
CONSENT_DECISIONS = codes("consent_decision")
GUARDIAN_RELATIONS = codes("guardian_relation")
REMINDER_KINDS = codes("reminder_kind")
EMERGENCY_FINDINGS = codes("emergency_finding")
REMINDER_STATUSES = codes("reminder_status")
AUDIT_OUTCOMES = codes("audit_outcome")
