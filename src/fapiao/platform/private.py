"""Answers that show personal data in full are kept out of every cache (issue 13, finding 11).

An answer that shows personal data in full — anything decrypted during the request (an address-book
entry, the issue form's buyer fragment, an invoice revealed, a claim's ID number: the data keys mark
the request when they decrypt), or a form echoing what was typed (:func:`private_page`) — carries
``Cache-Control: no-store``, as the API's reveal always has.  Masked lists stay as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse

from fapiao.platform.context import mark_personal_data, personal_data_watch


class NoStoreForPersonalData:
    """``Cache-Control: no-store`` on every answer of a request that handled personal data in clear."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with personal_data_watch() as shown:
            response = self.get_response(request)
            if shown():
                response["Cache-Control"] = "no-store"
        return response


View = Callable[..., HttpResponse]


def private_page(view: View) -> View:
    """For a page that shows personal data as typed (a form echoing a buyer's ID number, phone,
    address): its answers are never cached, whatever else they show."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        mark_personal_data()
        return view(request, *args, **kwargs)

    return wrapper
