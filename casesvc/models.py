"""Imports every model so that the metadata (and Alembic's autogenerate) sees all tables."""

from casesvc.agencies.models import Agency  # noqa: F401
from casesvc.audit.models import AuditEvent, AuditInbox  # noqa: F401
from casesvc.auth.models import (  # noqa: F401
    ApiClient,
    CalendarFeed,
    ExternalIdentity,
    RefreshFamily,
    RefreshToken,
    RevokedToken,
    User,
)
from casesvc.cases.models import Case, Participant  # noqa: F401
from casesvc.consents.models import Consent, ConsentAgency  # noqa: F401
from casesvc.continuity.models import CaseMove  # noqa: F401
from casesvc.emergency.models import EmergencyAccess, EmergencyReview  # noqa: F401
from casesvc.followups.models import Event, Note  # noqa: F401
from casesvc.reactions.models import Condition, Reaction, Signature  # noqa: F401
from casesvc.reminders.models import Reminder, Webhook, WebhookAttempt, WebhookDelivery  # noqa: F401
from casesvc.statistics.models import ReactionSpan  # noqa: F401
from casesvc.web.idempotency import IdempotencyKey  # noqa: F401
from casesvc.youths.models import Guardian, Youth  # noqa: F401
