"""The web layer: what views share — responses, ETags and If-Match, the request's one commit and
Idempotency-Key. Views import it; services never do (docs/architecture.md)."""

from casesvc.common.pagination import page_schema
from casesvc.web.commit import transactional
from casesvc.web.responses import etag_for, etag_header, if_match_documented, json_response, require_if_match

__all__ = [
    "etag_for",
    "etag_header",
    "if_match_documented",
    "json_response",
    "page_schema",
    "require_if_match",
    "transactional",
]
