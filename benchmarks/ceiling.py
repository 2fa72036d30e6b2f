"""The ceiling app: the least a Django + django-ninja JSON request can cost on this machine.

No middleware, no installed apps, no database, no templates: one ninja view that takes a path
parameter and answers a JSON object of about 100 bytes.  ``benchmarks/issue_http.py`` serves it
with the same gunicorn shape as ``make run`` (gthread, ``--workers`` × ``--threads``) and loads it
with the same generator as the real server, so each of its figures can be read as a ratio to what
the stack itself allows.

    .venv/bin/gunicorn --chdir benchmarks -k gthread -w 2 --threads 16 ceiling:application
"""

from __future__ import annotations

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="ceiling-benchmark-only",  # noqa: S106  signs nothing: no sessions, no cookies
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={},
        USE_I18N=False,
        USE_TZ=True,
        TEMPLATES=[],
    )
    django.setup()

from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest
from django.urls import path
from ninja import NinjaAPI

api = NinjaAPI(urls_namespace="ceiling", docs_url=None, openapi_url=None)


@api.get("/invoices/{number}")
def invoice(request: HttpRequest, number: str) -> dict[str, object]:
    """About 100 bytes of JSON, like the smallest answer of the real API."""
    return {"number": number, "state": "normal", "total_with_tax": "1060.00", "issued_on": "2026-01-01"}


urlpatterns = [path("api/v1/", api.urls)]
application = get_wsgi_application()
