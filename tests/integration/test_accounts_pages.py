"""The account pages: one's own API tokens, and users for merchant admins and operators."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from fapiao.accounts.models import ApiToken, User
from fapiao.accounts.services import authenticate_token, create_token

pytestmark = pytest.mark.django_db


def browser_for(user: User) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def test_the_menu_offers_tokens_to_everyone_and_users_to_admins(demo):
    clerk_page = browser_for(demo["clerk"]).get("/").content.decode()
    assert 'href="/accounts/tokens/"' in clerk_page and 'href="/accounts/users/"' not in clerk_page
    admin_page = browser_for(demo["madmin"]).get("/").content.decode()
    assert 'href="/accounts/users/"' in admin_page


def test_a_token_made_on_the_page_is_shown_once_and_works(demo):
    browser = browser_for(demo["clerk"])
    response = browser.post("/accounts/tokens/", {"name": "accounting", "scope": "read", "days": "30"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    plaintext = re.search(r"fpv_[A-Za-z0-9_-]+", response.content.decode()).group(0)  # type: ignore[union-attr]
    assert authenticate_token(plaintext).name == "accounting"
    listing = browser.get("/accounts/tokens/").content.decode()
    assert "accounting" in listing and plaintext not in listing


def test_bad_token_fields_are_shown_beside_the_form(demo):
    response = browser_for(demo["clerk"]).post(
        "/accounts/tokens/", {"name": "", "scope": "read", "days": "9999"}
    )
    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.content.decode()
    assert ApiToken.objects.count() == 0


def test_revoking_on_the_page(demo):
    token, plaintext = create_token(user=demo["clerk"], scope="read", name="old script")
    response = browser_for(demo["clerk"]).post(f"/accounts/tokens/{token.public_id}/revoke/")
    assert response.status_code == 302
    with pytest.raises(Exception, match="token"):
        authenticate_token(plaintext)


def test_someone_elses_token_cannot_be_revoked_on_the_page(demo):
    token, _plaintext = create_token(user=demo["clerk2"], scope="read")
    assert browser_for(demo["clerk"]).post(f"/accounts/tokens/{token.public_id}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_merchant_admin_invites_and_disables_on_the_page(demo):
    browser = browser_for(demo["madmin"])
    page = browser.get("/accounts/users/").content.decode()
    assert "clerk2" not in page and "operator" not in page
    invited = browser.post("/accounts/users/", {"username": "clerk9", "role": "clerk", "email": "c9@x.cn"})
    assert invited.status_code == 302 and invited["Location"] == "/accounts/users/"
    listing = browser.get("/accounts/users/").content.decode()
    assert "mailed to c9@x.cn" in listing and "awaiting password" in listing
    user = User.objects.get(username="clerk9")
    assert user.merchant == demo["madmin"].merchant and not user.has_usable_password()
    assert browser.post(f"/accounts/users/{user.pk}/disable/").status_code == 302
    assert not User.objects.get(pk=user.pk).is_active


def test_a_taken_username_is_an_error_beside_the_field(demo):
    response = browser_for(demo["madmin"]).post(
        "/accounts/users/", {"username": "clerk", "role": "clerk", "email": "c@x.cn"}
    )
    assert response.status_code == 200 and 'id="f-username-error"' in response.content.decode()


def test_a_reset_on_the_page_shows_no_secret(demo):
    response = browser_for(demo["madmin"]).post(f"/accounts/users/{demo['clerk'].pk}/reset-password/")
    assert response.status_code == 302 and response["Location"] == "/accounts/users/"
    assert not User.objects.get(username="clerk").has_usable_password()


def test_a_one_time_password_user_is_sent_to_change_it_first(demo):
    user = demo["clerk"]
    user.must_change_password = True
    user.save()
    response = browser_for(user).get("/invoices/")
    assert response.status_code == 302 and response["Location"] == "/password/"
    assert browser_for(user).get("/password/").status_code == 200
