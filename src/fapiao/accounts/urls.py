"""Account pages (the JSON API is ``/api/v1/accounts``)."""

from __future__ import annotations

from django.urls import path

from fapiao.accounts.views import second_factor, tokens, users, welcome

app_name = "accounts"

urlpatterns = [
    path("second-factor/", second_factor.enter_code, name="second-factor"),
    path("second-factor/setup/", second_factor.set_up, name="second-factor-setup"),
    # The mailed link to choose one's password (fapiao.accounts.invitations).
    path("welcome/password/", welcome.choose_password, name="welcome-password"),
    path("welcome/<str:token>/", welcome.open_link, name="welcome"),
    path("tokens/", tokens.tokens, name="tokens"),
    path("tokens/<str:token_id>/revoke/", tokens.revoke_token, name="token-revoke"),
    path("users/", users.users, name="users"),
    path("users/<int:user_id>/disable/", users.user_action, {"action": "disable"}, name="user-disable"),
    path("users/<int:user_id>/enable/", users.user_action, {"action": "enable"}, name="user-enable"),
    path(
        "users/<int:user_id>/reset-password/",
        users.user_action,
        {"action": "reset-password"},
        name="user-reset-password",
    ),
    path("users/<int:user_id>/unlock/", users.user_action, {"action": "unlock"}, name="user-unlock"),
    path(
        "users/<int:user_id>/reset-second-factor/",
        users.user_action,
        {"action": "reset-second-factor"},
        name="user-reset-second-factor",
    ),
]
