"""Account pages: the users a merchant admin or an operator manages.

The same selectors and services as ``/api/v1/accounts`` (so the same permission table and the same
merchant scoping).  Inviting a user or resetting a password shows no secret at all: the user is mailed
a link to choose their password.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from fapiao.accounts import second_factor, selectors, services
from fapiao.accounts.choices import MERCHANT_ROLES, STAFF_ROLES, Role
from fapiao.accounts.mails import beijing
from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, RoleForbiddenError, may
from fapiao.core.errors import ValidationFailed, _
from fapiao.platform.forms import FormState, posted
from fapiao.platform.labels import ROLES as ROLE_LABELS

INVITE_FIELDS = ("username", "role", "merchant", "last_name", "first_name", "email")
USER_ACTIONS = ("disable", "enable", "reset-password", "unlock", "reset-second-factor")


def _actor(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


# --- users ----------------------------------------------------------------------------------------


def _invitable_roles(actor: User) -> list[Role]:
    if may(actor, Action.MANAGE_MERCHANT_USERS):
        return [Role.CLERK, Role.MERCHANT_ADMIN]
    roles: list[Role] = []
    if may(actor, Action.MANAGE_MERCHANTS):
        roles.append(Role.MERCHANT_ADMIN)
    if may(actor, Action.MANAGE_STAFF):
        roles += [role for role in Role if role in STAFF_ROLES]
    return roles


def _invite(request: HttpRequest, actor: User, form: FormState) -> HttpResponse | None:
    form.data = posted(request.POST, INVITE_FIELDS)
    uscc = form.data["merchant"].strip()
    try:
        merchant = selectors.merchant_get(user=actor, uscc=uscc) if uscc else None
        user, issued = services.invite_user(
            actor=actor,
            username=form.data["username"],
            role=form.data["role"],
            merchant=merchant,
            last_name=form.data["last_name"],
            first_name=form.data["first_name"],
            email=form.data["email"],
        )
    except (selectors.MerchantNotFoundError, services.FirstAdminOnlyError) as failure:
        form.add("merchant", failure.render(gettext))
        return None
    except services.UsernameTakenError as failure:
        form.add("username", failure.render(gettext))
        return None
    except ValidationFailed as failure:
        form.add_failure(failure, lambda field: field)
        return None
    message = _(
        "{username} was invited: a link to choose a password was mailed to {email}; "
        "it works once, until {expires}."
    )
    messages.success(
        request,
        gettext(message).format(
            username=user.username,
            email=issued.invitation.sent_to,
            expires=beijing(issued.invitation.expires_at),
        ),
    )
    return redirect("accounts:users")


@login_required
@require_http_methods(["GET", "POST"])
def users(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    rows = list(selectors.user_list(user=actor))
    roles = _invitable_roles(actor)
    form = FormState(data={"role": roles[0].value if roles else ""})
    if request.method == "POST":
        if not roles:
            raise RoleForbiddenError()
        answer = _invite(request, actor, form)
        if answer is not None:
            return answer
    locked = selectors.locked_usernames([user.username for user in rows])
    context = {
        "rows": [
            {
                "user": user,
                "role": str(ROLE_LABELS.get(user.role, user.role)),
                "locked": user.username in locked,
            }
            for user in rows
        ],
        "form": form,
        "summary": form.summary({name: "" for name in INVITE_FIELDS}),
        "role_choices": [(role.value, str(ROLE_LABELS[role.value])) for role in roles],
        "needs_merchant": bool(roles) and not actor.is_merchant_user,
        "merchant_roles": [role.value for role in MERCHANT_ROLES],
        "may_unlock": may(actor, Action.UNLOCK_USERS),
        "may_manage_staff": may(actor, Action.MANAGE_STAFF),
        "may_manage": bool(roles),
    }
    return render(request, "accounts/users.html", context)


@login_required
@require_POST
def user_action(request: HttpRequest, user_id: int, action: str) -> HttpResponse:
    assert action in USER_ACTIONS  # fixed by the URL configuration
    actor = _actor(request)
    target = selectors.user_get(user=actor, user_id=user_id)
    if action == "reset-password":
        issued = services.reset_password(actor=actor, target=target)
        done = _(
            "{username}'s password, sessions and API tokens no longer work; a link to choose a new password "
            "was mailed to {email}."
        )
        messages.success(
            request, gettext(done).format(username=target.username, email=issued.invitation.sent_to)
        )
        return redirect("accounts:users")
    if action == "unlock":
        services.unlock_user(actor=actor, target=target)
        done = _("{username} was unlocked.")
    elif action == "reset-second-factor":
        second_factor.reset(actor=actor, target=target)
        done = _("{username} sets up two-step sign-in again at the next sign-in.")
    else:
        services.set_user_active(actor=actor, target=target, active=action == "enable")
        done = _("{username} was enabled.") if action == "enable" else _("{username} was disabled.")
    messages.success(request, gettext(done).format(username=target.username))
    return redirect("accounts:users")
