"""The one add-or-change form both the address book and the catalogue use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext

from fapiao.core.errors import ValidationFailed
from fapiao.platform.forms import FormState, posted

PAGE_SIZE = 50


def translated(labels: dict[str, str]) -> dict[str, str]:
    return {name: gettext(text) for name, text in labels.items()}


def edit_page(
    request: HttpRequest,
    *,
    template: str,
    fields: tuple[str, ...],
    labels: dict[str, str],
    initial: dict[str, str],
    save: Callable[[dict[str, str]], Any],
    done: str,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    """GET: the form with ``initial``.  POST: save, or the form again with each error beside its field."""
    state = FormState(data=initial)
    if request.method == "POST":
        state = FormState(data=posted(request.POST, fields))
        try:
            save(state.data)
        except ValidationFailed as failed:
            state.add_failure(failed, lambda path: path if path in fields else "")
        else:
            messages.success(request, gettext("Saved."))
            return redirect(done)
    context = {"form": state, "summary": state.summary(translated(labels)), **(extra or {})}
    return render(request, template, context)
