"""Signing in through an OpenID Connect provider in the real browser: the login page's
button, the provider's page (tests/oidc_provider.py, its own process), back signed in, and
out of both with « Se déconnecter ». The refusals are tested over HTTP
(tests/functional/test_oidc_sign_in.py)."""

from __future__ import annotations

import json
import urllib.request

from tests.browser.pages import LoginPage


def test_a_referent_signs_in_through_the_provider_and_out_of_both(
        browser, live_server, oidc_provider, accounts):
    login = LoginPage(browser, live_server).open()
    provider_page = login.sign_in_with_provider("ProConnect (test)")
    assert provider_page.driver.current_url.startswith(f"{oidc_provider}/authorize?")
    home = provider_page.sign_in_as("referent@test.invalid")
    assert home.path == "/"
    assert "Mes fiches" in home.menu_entries()
    assert home.console_errors() == []

    login = home.log_out()
    assert login.path == "/connexion"
    assert login.flash_messages() == ["Vous êtes déconnecté·e."]
    assert login.menu_entries() == []
    with urllib.request.urlopen(f"{oidc_provider}/test/ended-sessions",  # noqa: S310
                                timeout=10) as answer:
        assert json.load(answer)[-1]["id_token_hint"]  # the provider's session ended too
    assert login.console_errors() == []  # no CSP violation on the way to the provider
