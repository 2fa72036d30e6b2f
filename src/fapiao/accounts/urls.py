"""Account pages (the JSON API is ``/api/v1/accounts``)."""

from __future__ import annotations

from django.urls import path

from fapiao.accounts import pages, second_factor_pages

app_name = "accounts"

urlpatterns = [
    path("second-factor/", second_factor_pages.enter_code, name="second-factor"),
    path("second-factor/setup/", second_factor_pages.set_up, name="second-factor-setup"),
    path("tokens/", pages.tokens, name="tokens"),
    path("tokens/<str:token_id>/revoke/", pages.revoke_token, name="token-revoke"),
    path("users/", pages.users, name="users"),
    path("users/<int:user_id>/disable/", pages.user_action, {"action": "disable"}, name="user-disable"),
    path("users/<int:user_id>/enable/", pages.user_action, {"action": "enable"}, name="user-enable"),
    path(
        "users/<int:user_id>/reset-password/",
        pages.user_action,
        {"action": "reset-password"},
        name="user-reset-password",
    ),
    path("users/<int:user_id>/unlock/", pages.user_action, {"action": "unlock"}, name="user-unlock"),
    path(
        "users/<int:user_id>/reset-second-factor/",
        pages.user_action,
        {"action": "reset-second-factor"},
        name="user-reset-second-factor",
    ),
]
