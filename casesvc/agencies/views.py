"""Administration of agencies and users (admin role with the `admin` scope)."""

from __future__ import annotations

from flask import url_for
from flask_smorest import Blueprint

from casesvc.agencies import service
from casesvc.agencies.schemas import (
    AgencyPatchSchema,
    AgencyQuery,
    AgencySchema,
    PasswordSchema,
    UserPatchSchema,
    UserQuery,
    UserSchema,
)
from casesvc.auth.principal import admin_only, current_principal
from casesvc.common.pagination import page_schema
from casesvc.web import etag_header, if_match_documented, require_if_match, transactional

agencies_blp = Blueprint(
    "agencies",
    __name__,
    url_prefix="/api/v1/agencies",
    description="Agencies and the municipalities they serve (admin)",
)
users_blp = Blueprint(
    "users", __name__, url_prefix="/api/v1/users", description="Staff, admin and auditor users (admin)"
)


def agency_response(agency, status: int = 200):
    headers = etag_header(agency)
    if status == 201:
        headers["Location"] = url_for("agencies.get_agency", code=agency.code)
    return agency, status, headers


def user_response(user, status: int = 200):
    headers = etag_header(user)  # a digest of what can change in the user (`User.version`)
    if status == 201:
        headers["Location"] = url_for("users.get_user", user_id=user.id)
    return user, status, headers


# --- agencies ----------------------------------------------------------------------------------


@agencies_blp.route("", methods=["GET"])
@admin_only
@agencies_blp.arguments(AgencyQuery(), location="query")
@agencies_blp.response(200, page_schema(AgencySchema))
def list_agencies(args):
    """Agencies, newest first; `kind` filters"""
    return service.list_agencies(args)


@agencies_blp.route("", methods=["POST"])
@transactional(idempotent=True)
@admin_only
@agencies_blp.arguments(AgencySchema())
@agencies_blp.response(201, AgencySchema)
def create_agency(data):
    """Create an agency"""
    agency = service.create_agency(data["code"], data["kind"], data["name"], data["municipalities"])
    return agency_response(agency, 201)


@agencies_blp.route("/<code>", methods=["GET"])
@admin_only
@agencies_blp.response(200, AgencySchema)
def get_agency(code):
    """One agency"""
    return agency_response(service.get_agency(code))


@agencies_blp.route("/<code>", methods=["PATCH"])
@transactional()
@admin_only
@agencies_blp.arguments(AgencyPatchSchema())
@agencies_blp.response(200, AgencySchema)
@if_match_documented(agencies_blp)
def patch_agency(data, code):
    """Change an agency's name or municipalities (needs If-Match); effective from the next request"""
    agency = service.get_agency(code, for_update=True)
    require_if_match(agency)
    return agency_response(service.update_agency(agency, data))


# --- users -------------------------------------------------------------------------------------


@users_blp.route("", methods=["GET"])
@admin_only
@users_blp.arguments(UserQuery(), location="query")
@users_blp.response(200, page_schema(UserSchema))
def list_users(args):
    """Users, newest first; `agency`, `role` and `active` filter"""
    return service.list_users(args)


@users_blp.route("", methods=["POST"])
@transactional(idempotent=True, secret_fields=("password",))
@admin_only
@users_blp.arguments(UserSchema())
@users_blp.response(201, UserSchema)
def create_user(data):
    """Create a user with a password (stored as a hash; never returned)"""
    user = service.create_user(data["username"], data["role"], data["agency_code"], data["password"])
    return user_response(user, 201)


@users_blp.route("/<user_id>", methods=["GET"])
@admin_only
@users_blp.response(200, UserSchema)
def get_user(user_id):
    """One user"""
    return user_response(service.get_user(user_id))


@users_blp.route("/<user_id>", methods=["PATCH"])
@transactional()
@admin_only
@users_blp.arguments(UserPatchSchema())
@users_blp.response(200, UserSchema)
@users_blp.alt_response(
    409,
    description="An administrator cannot change their own role or agency; a user of the "
    "identity provider is changed there",
)
@if_match_documented(users_blp)
def patch_user(data, user_id):
    """Change a user's role or agency (needs If-Match); the user's logins end, and it logs in again"""
    user = service.get_user(user_id)
    require_if_match(user)
    return user_response(service.change_user(current_principal(), user, data))


@users_blp.route("/<user_id>/password", methods=["POST"])
@transactional()
@admin_only
@users_blp.arguments(PasswordSchema())
@users_blp.response(200, UserSchema)
@users_blp.alt_response(
    409,
    description="An administrator cannot reset their own password here; a user of "
    "the identity provider has its password there",
)
def set_password(data, user_id):
    """Set a new password for another user (a reset): every login the user had, and its calendar
    address, end at once"""
    user = service.get_user(user_id)
    return user_response(service.set_password(user, data["password"], current_principal()))


@users_blp.route("/<user_id>/disable", methods=["POST"])
@transactional()
@admin_only
@users_blp.response(200, UserSchema)
@users_blp.alt_response(409, description="An administrator cannot disable their own account")
def disable_user(user_id):
    """Disable a user: no more logins, and its live access and refresh tokens are refused at once"""
    user = service.get_user(user_id)
    return user_response(service.disable_user(current_principal(), user))


@users_blp.route("/<user_id>/enable", methods=["POST"])
@transactional()
@admin_only
@users_blp.response(200, UserSchema)
def enable_user(user_id):
    """Enable a disabled user: it may log in again"""
    return user_response(service.enable_user(service.get_user(user_id)))
