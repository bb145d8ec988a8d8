from __future__ import annotations

from flask import url_for
from flask_smorest import Blueprint

from casesvc.access import case_for, readable_case
from casesvc.auth.principal import current_principal, requires
from casesvc.common.pagination import page_schema
from casesvc.common.schemas import TransitionSchema
from casesvc.errors import problem_documented
from casesvc.policy import Action
from casesvc.reactions import service
from casesvc.reactions.schemas import ReactionPatchSchema, ReactionQuery, ReactionSchema, SignatureSchema
from casesvc.web import etag_header, if_match_documented, require_if_match, transactional

blp = Blueprint(
    "reactions",
    __name__,
    url_prefix="/api/v1/cases/<case_id>/reactions",
    description="Reactions, their conditions and signatures",
)


def reaction_response(reaction, status: int = 200):
    headers = etag_header(reaction)
    if status == 201:
        headers["Location"] = url_for("reactions.get_reaction", case_id=reaction.case_id, reaction_id=reaction.id)
    return reaction, status, headers


@blp.route("", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.WRITE_REACTION)
@blp.arguments(ReactionSchema())
@blp.response(201, ReactionSchema)
@problem_documented(blp, 409, "The case is closed (`case-closed`): nothing more is planned on it")
def create_reaction(data, case_id):
    """Add a reaction (as a draft) with its conditions and any signatures"""
    principal = current_principal()
    case, _ = case_for(principal, case_id, Action.WRITE_REACTION)
    return reaction_response(service.create_reaction(principal, case, data), 201)


@blp.route("", methods=["GET"])
@requires(Action.READ_REACTIONS)
@blp.arguments(ReactionQuery(), location="query")
@blp.response(200, page_schema(ReactionSchema))
def list_reactions(args, case_id):
    """The case's reactions, newest first"""
    case, _ = readable_case(current_principal(), case_id, Action.READ_REACTIONS)
    return service.list_reactions(case, args)


@blp.route("/<reaction_id>", methods=["GET"])
@requires(Action.READ_REACTIONS)
@blp.response(200, ReactionSchema)
def get_reaction(case_id, reaction_id):
    """One reaction"""
    case, _ = readable_case(current_principal(), case_id, Action.READ_REACTIONS)
    return reaction_response(service.reaction_in(case, reaction_id))


@blp.route("/<reaction_id>", methods=["PATCH"])
@transactional()
@requires(Action.WRITE_REACTION)
@blp.arguments(ReactionPatchSchema())
@blp.response(200, ReactionSchema)
@if_match_documented(blp)
@problem_documented(
    blp,
    409,
    "The reaction is closed (`reaction-closed`), its conditions change only in draft "
    "(`reaction-not-draft`), or events are logged against them (`conditions-in-use`)",
)
def patch_reaction(data, case_id, reaction_id):
    """Change dates, reference or (in draft) conditions; never the status (needs If-Match)"""
    case, _ = case_for(current_principal(), case_id, Action.WRITE_REACTION)
    reaction = service.reaction_in(case, reaction_id)
    require_if_match(reaction)
    return reaction_response(service.update_reaction(case, reaction, data))


@blp.route("/<reaction_id>/signatures", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.WRITE_REACTION)
@blp.arguments(SignatureSchema())
@blp.response(201, SignatureSchema)
@problem_documented(blp, 409, "The reaction is closed and takes no more signatures")
def add_signature(data, case_id, reaction_id):
    """Record that a party signed"""
    principal = current_principal()
    case, _ = case_for(principal, case_id, Action.WRITE_REACTION)
    reaction = service.reaction_in(case, reaction_id)
    signature = service.add_signature(principal, reaction, data)
    return signature, 201, {"Location": url_for("reactions.get_reaction", case_id=case.id, reaction_id=reaction.id)}


@blp.route("/<reaction_id>/transitions", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.TRANSITION_REACTION)
@blp.arguments(TransitionSchema())
@blp.response(200, ReactionSchema)
@problem_documented(
    blp,
    409,
    "A move the state machine does not allow (`current`, `to`, `allowed`), or "
    "`signatures-required` with the parties `missing`",
)
def transition_reaction(data, case_id, reaction_id):
    """Move the reaction to another status (lead agency or coordinator; 409 lists the allowed ones)"""
    case, _ = case_for(current_principal(), case_id, Action.TRANSITION_REACTION)
    reaction = service.reaction_in(case, reaction_id)
    return reaction_response(service.transition_reaction(case, reaction, data["to"], data.get("reason")))
