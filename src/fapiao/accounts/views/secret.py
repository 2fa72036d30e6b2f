"""A secret — a new API token — is shown on exactly one page, which is never cached."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers


def secret_page(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    response = render(request, "accounts/secret.html", context)
    add_never_cache_headers(response)
    return response
