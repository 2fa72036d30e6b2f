"""The JSON API (DESIGN.md §6b): authentication, error mapping and the routers."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import APIKeyHeader, SessionAuth

from fapiao.accounts.models import User
from fapiao.accounts.services import TokenInvalidError, authenticate_token
from fapiao.core.choices import TokenScope
from fapiao.core.errors import FapiaoError, FieldError, PermissionDeniedError, ValidationFailed, _
from fapiao.web import problems

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class TokenScopeError(PermissionDeniedError):
    """This token may only read; create a write token to change data."""

    code = "token_read_only"


class BearerToken(APIKeyHeader):
    """``Authorization: Bearer <token>``; read tokens may only use safe methods."""

    param_name = "Authorization"
    openapi_type = "http"
    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        if not key:
            return None
        scheme, _sep, token = key.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenInvalidError()
        api_token = authenticate_token(token.strip())
        if api_token.scope == TokenScope.READ and request.method not in SAFE_METHODS:
            raise TokenScopeError(_("This token may only read; create a write token to change data."))
        request.user = api_token.user
        return api_token.user


class Session(SessionAuth):
    """The browser's session, with Django's CSRF check on unsafe methods."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        return user if user and user.is_active else None


api = NinjaAPI(
    title="Fapiao Vault API",
    version="1",
    urls_namespace="api-v1",
    auth=[BearerToken(), Session()],
    docs_url="/docs",
    openapi_url="/openapi.json",
)


@api.exception_handler(FapiaoError)
def fapiao_error(request: HttpRequest, error: FapiaoError) -> HttpResponse:
    return problems.from_error(error)


@api.exception_handler(DatabaseError)
def database_error(request: HttpRequest, error: DatabaseError) -> HttpResponse:
    return problems.database_unavailable(request, error)


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return problems.problem(
        401,
        code="unauthenticated",
        detail=gettext(_("Sign in, or send an API token as 'Authorization: Bearer <token>'.")),
        headers={"WWW-Authenticate": "Bearer"},
    )


@api.exception_handler(NinjaValidationError)
def request_invalid(request: HttpRequest, error: NinjaValidationError) -> HttpResponse:
    fields = [
        FieldError(
            ".".join(str(part) for part in item.get("loc", [])[1:]) or "request",
            "invalid",
            _("This value is not valid."),
        )
        for item in error.errors
    ]
    return problems.from_error(ValidationFailed(fields))


@api.exception_handler(RequestDataTooBig)
def too_big(request: HttpRequest, error: RequestDataTooBig) -> HttpResponse:
    return problems.problem(413, code="too_large", detail=gettext(_("The request body is too large.")))


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    return problems.problem(error.status_code, code="http_error", detail=str(error))


def register_routers() -> None:
    from fapiao.invoices.api import router as invoices_router
    from fapiao.ledger.api import router as ledger_router

    api.add_router("/invoices", invoices_router)
    api.add_router("/ledger", ledger_router)


register_routers()
