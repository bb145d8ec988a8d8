"""The head of the chain, and signed checkpoints of it: a key the database never holds signs the
head, so a later rewrite of the chain (recomputing every hash after a changed row) no longer
leads to the signed head."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import func, select

from casesvc.audit import chain
from casesvc.audit.models import AuditEvent, AuditInbox
from casesvc.audit.sealing import chain_time, seal
from casesvc.extensions import db


def head() -> dict:
    seal(wait=True)
    row = db.session.execute(
        select(AuditEvent.seq, AuditEvent.hash, AuditEvent.at).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    unsealed = db.session.scalar(select(func.count()).select_from(AuditInbox))
    if row is None:
        return {"seq": 0, "hash": chain.GENESIS, "at": None, "unsealed": unsealed}
    return {"seq": row.seq, "hash": row.hash, "at": chain_time(row.at), "unsealed": unsealed}


def _checkpoint_message(seq: int, hash_: str) -> bytes:
    return f"casesvc-audit-checkpoint:{seq}:{hash_}".encode()


def sign_checkpoint(key: str) -> dict:
    """The head, signed with a key the database never holds: a later rewrite of the chain
    (recomputing every hash after a changed row) no longer leads to this signed head."""
    current = head()
    signature = hmac.new(key.encode(), _checkpoint_message(current["seq"], current["hash"]), hashlib.sha256).hexdigest()
    return {
        "seq": current["seq"],
        "hash": current["hash"],
        "at": current["at"],
        "algorithm": "HMAC-SHA256",
        "signature": signature,
    }


def check_checkpoint(checkpoint: dict, key: str, hash_at_seq) -> str | None:
    """None when the checkpoint is genuine and the chain still leads to it; else why not.
    `hash_at_seq(seq)` returns the hash the chain now has at that seq (or None)."""
    try:
        seq, hash_, signature = int(checkpoint["seq"]), str(checkpoint["hash"]), str(checkpoint["signature"])
    except (KeyError, TypeError, ValueError):
        return "the checkpoint file is not a casesvc checkpoint"
    expected = hmac.new(key.encode(), _checkpoint_message(seq, hash_), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "the checkpoint's signature does not match (wrong key, or the checkpoint was altered)"
    if seq == 0:
        return None
    current = hash_at_seq(seq)
    if current is None:
        return f"the chain no longer reaches the checkpoint's seq {seq}"
    if current != hash_:
        return f"the chain no longer leads to the signed head at seq {seq}: it was rewritten"
    return None


def database_hash_at(seq: int) -> str | None:
    return db.session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == seq))
