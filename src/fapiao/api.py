"""The JSON API (docs/api.md): authentication, error mapping and the routers."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.parser import Parser
from ninja.security import APIKeyHeader, SessionAuth
from ninja.utils import check_csrf

from fapiao.accounts import second_factor
from fapiao.accounts.api import router as accounts_router
from fapiao.accounts.models import User
from fapiao.accounts.services import TokenInvalidError, authenticate_token
from fapiao.audit.api import router as audit_router
from fapiao.core.choices import TokenScope
from fapiao.core.errors import FapiaoError, FieldError, PermissionDeniedError, ValidationFailed, _
from fapiao.documents.api import bundle_router, check_router
from fapiao.documents.api import router as documents_router
from fapiao.invoices.api import router as invoices_router
from fapiao.invoices.bulk_api import router as invoice_batches_router
from fapiao.ledger.api import router as ledger_router
from fapiao.platform import errors, openapi, problems
from fapiao.platform.requests import json_body
from fapiao.recovery.api import router as cases_router

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
        request.api_token = api_token  # type: ignore[attr-defined]
        return api_token.user


class CsrfFailedError(PermissionDeniedError):
    """The request lacks a valid CSRF token; reload the page and try again, or use an API token."""

    code = "csrf_failed"


class PasswordChangeRequiredError(PermissionDeniedError):
    """Change your one-time password before you continue."""

    code = "password_change_required"


class SecondFactorRequiredError(PermissionDeniedError):
    """Enter your two-step sign-in code on the website first."""

    code = "second_factor_required"


class Session(SessionAuth):
    """The browser's session, with Django's CSRF check on unsafe methods.

    Without a session cookie there is no ambient credential to abuse, so the request is simply
    unauthenticated (401) rather than a CSRF failure; with one, an unsafe method needs the CSRF token.
    """

    def _get_key(self, request: HttpRequest) -> str | None:
        key = request.COOKIES.get(self.param_name)
        if key and self.csrf and not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise CsrfFailedError()
        return key

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if not (user and user.is_active):
            return None
        if user.must_change_password:
            raise PasswordChangeRequiredError()
        if second_factor.required(user) and not second_factor.session_passed(request):
            raise SecondFactorRequiredError()
        return user


class BoundedJsonParser(Parser):
    """Bodies declared as schemas are read by the same bounded reader as every other JSON body."""

    def parse_body(self, request: HttpRequest) -> Any:
        return json_body(request)


class FapiaoAPI(NinjaAPI):
    """Ninja's API, whose OpenAPI document also holds the ``Problem`` schema that every problem
    answer refers to (:mod:`fapiao.platform.openapi`)."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        document = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        document["components"]["schemas"].update(openapi.problem_components())
        return document


api = FapiaoAPI(
    title="Fapiao Vault API",
    parser=BoundedJsonParser(),
    version="1",
    urls_namespace="api-v1",
    auth=[BearerToken(), Session()],
    docs_url="/docs",
    openapi_url="/openapi.json",
)


# Our errors and database failures are answered where the pages' are (fapiao.platform.errors).
@api.exception_handler(FapiaoError)
def fapiao_error(request: HttpRequest, error: FapiaoError) -> HttpResponse:
    return errors.respond(request, error)


@api.exception_handler(DatabaseError)
def database_error(request: HttpRequest, error: DatabaseError) -> HttpResponse:
    return errors.respond(request, error)


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    throttled = errors.refused(request, status=401, code="unauthenticated")
    if throttled is not None:  # an anonymous client past the hour's limit: no record, no work
        return problems.too_many_requests(throttled.retry_after)
    return problems.problem(
        401,
        code="unauthenticated",
        detail=gettext(_("Sign in, or send an API token as 'Authorization: Bearer <token>'.")),
        headers={"WWW-Authenticate": "Bearer"},
    )


@api.exception_handler(NinjaValidationError)
def request_invalid(request: HttpRequest, error: NinjaValidationError) -> HttpResponse:
    fields = []
    for item in error.errors:
        field = ".".join(str(part) for part in item.get("loc", [])[1:]) or "request"
        if item.get("type") == "missing":
            fields.append(FieldError(field, "required", _("This field is required.")))
        else:
            fields.append(FieldError(field, "invalid", _("This value is not valid.")))
    return problems.from_error(ValidationFailed(fields))


@api.exception_handler(RequestDataTooBig)
def too_big(request: HttpRequest, error: RequestDataTooBig) -> HttpResponse:
    return problems.problem(413, code="too_large", detail=gettext(_("The request body is too large.")))


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    # ninja wraps whatever its body parser raises in a 400 "Cannot parse request body": the reader's
    # own answer (422 malformed_json, too_deep, bad_character) is the true one.  (A body over the
    # upload limit is read before the parser runs: RequestDataTooBig reaches too_big() directly.)
    cause = error.__cause__
    if isinstance(cause, FapiaoError):
        return fapiao_error(request, cause)
    return problems.problem(error.status_code, code="http_error", detail=str(error))


def register_routers() -> None:

    api.add_router("/accounts", accounts_router)
    api.add_router("/audit", audit_router)
    api.add_router("/invoices", invoices_router)
    api.add_router("/invoices", documents_router)
    api.add_router("/invoice-bundle", bundle_router)
    api.add_router("/invoice-batches", invoice_batches_router)
    api.add_router("/check", check_router)
    api.add_router("/ledger", ledger_router)
    api.add_router("/cases", cases_router)


register_routers()
