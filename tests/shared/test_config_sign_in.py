"""The sign-in settings: OpenID Connect providers and the second factor for everyone."""

import pytest

from shared.config import ConfigError, load_settings


def with_provider(tmp_path, **overrides):
    secret = tmp_path / "proconnect_secret"
    secret.write_text("the-client-secret\n")
    env = {"ICLI_INSTANCE": str(tmp_path), "ICLI_OIDC_PROVIDERS": "ProConnect",
           "ICLI_OIDC_PROCONNECT_ISSUER": "https://auth.agentconnect.gouv.fr/api/v2",
           "ICLI_OIDC_PROCONNECT_CLIENT_ID": "icli-93",
           "ICLI_OIDC_PROCONNECT_CLIENT_SECRET_FILE": str(secret),
           "ICLI_OIDC_PROCONNECT_STRUCTURES": "3, 7",
           "ICLI_OIDC_PROCONNECT_ACR_VALUES": "eidas1"}
    env.update(overrides)
    return load_settings({k: v for k, v in env.items() if v is not None})


def test_a_provider_is_read_from_its_variables_and_its_secret_file(tmp_path):
    settings = with_provider(tmp_path)
    (provider,) = settings.oidc_providers
    assert (provider.name, provider.label, provider.client_id) == ("proconnect", "proconnect",
                                                                   "icli-93")
    assert provider.client_secret == "the-client-secret"
    assert "the-client-secret" not in repr(settings)
    assert provider.structure_ids == (3, 7) and provider.acr_values == ("eidas1",)
    assert provider.scopes == "openid email" and provider.email_trust == "claim"
    assert provider.metadata_url == \
        "https://auth.agentconnect.gouv.fr/api/v2/.well-known/openid-configuration"
    assert not settings.second_factor_everyone
    everyone = with_provider(tmp_path, ICLI_OIDC_PROCONNECT_STRUCTURES="*",
                             ICLI_SECOND_FACTOR_EVERYONE="1")
    assert everyone.oidc_providers[0].structure_ids is None and everyone.second_factor_everyone


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("ICLI_OIDC_PROCONNECT_CLIENT_SECRET_FILE", None, "CLIENT_SECRET_FILE"),
    ("ICLI_OIDC_PROCONNECT_STRUCTURES", None, "STRUCTURES"),
    ("ICLI_OIDC_PROCONNECT_STRUCTURES", "ALI de Bondy", "STRUCTURES"),
    ("ICLI_OIDC_PROCONNECT_EMAIL_TRUST", "always", "EMAIL_TRUST"),
    ("ICLI_OIDC_PROCONNECT_SCOPES", "email", "SCOPES"),
    ("ICLI_OIDC_PROVIDERS", "pro-connect", "ICLI_OIDC_PROVIDERS"),
])
def test_an_incomplete_provider_is_refused_with_the_variable_named(tmp_path, variable, value,
                                                                   named):
    with pytest.raises(ConfigError, match=named):
        with_provider(tmp_path, **{variable: value})
