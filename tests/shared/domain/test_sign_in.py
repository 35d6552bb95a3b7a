"""What an OpenID Connect provider may vouch for, and when a password needs a second factor
(the provider's round trip itself: tests/functional/test_oidc_sign_in.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.config import OidcProvider
from shared.domain import sign_in
from shared.models import AuditEvent, OidcLink
from tests.factories import PASSWORD

TWO_FACTORS = "https://proconnect.gouv.fr/assurance/self-asserted-2fa"


def provider(**settings) -> OidcProvider:
    return OidcProvider(**{"name": "proconnect", "label": "ProConnect",
                           "issuer": "https://proconnect.example", "client_id": "icli",
                           "client_secret": "secret", "acr_values": ("eidas1", TWO_FACTORS),
                           "second_factor_acr": (TWO_FACTORS,), "structure_ids": None,
                           **settings})


def claims(email: str, **values) -> sign_in.ProviderClaims:
    return sign_in.ProviderClaims(**{"subject": f"sub-{email}", "email": email,
                                     "email_verified": True, "acr": "eidas1", **values})


def refusal(db_session, vault, settings: OidcProvider, said: sign_in.ProviderClaims) -> str:
    with pytest.raises(sign_in.SignInRefused) as refused:
        sign_in.with_provider(db_session, vault, settings, said, second_factor_everyone=False)
    return refused.value.reason


def test_a_provider_vouches_only_for_the_referents_of_its_structures(world, db_session,
                                                                     vault):
    ssd = world["structures"]["ssd"]
    of_ssd = provider(structure_ids=(ssd.id,))
    user = sign_in.with_provider(db_session, vault, of_ssd, claims("referent@test.invalid"),
                                 second_factor_everyone=False)
    assert user == world["users"]["referent"]
    assert refusal(db_session, vault, of_ssd, claims("other.referent@test.invalid")) == \
        "structure"
    assert refusal(db_session, vault, of_ssd, claims("facilitator@test.invalid")) == \
        "structure"


def test_what_the_provider_says_must_hold(world, db_session, vault):
    assert refusal(db_session, vault, provider(), claims("referent@test.invalid",
                                                        email_verified=False)) == \
        "email_unverified"
    # ProConnect only sends addresses the federation checked
    trusted = provider(email_trust="provider")
    sign_in.with_provider(db_session, vault, trusted, claims("referent@test.invalid",
                                                             email_verified=False),
                          second_factor_everyone=False)
    assert refusal(db_session, vault, provider(), claims("referent@test.invalid",
                                                        acr="")) == "acr"
    assert refusal(db_session, vault, provider(sirets=("22930008201453",)),
                   claims("referent@test.invalid", siret="11111111111111")) == "siret"


def test_an_address_given_to_someone_else_is_refused(world, db_session, vault):
    sign_in.with_provider(db_session, vault, provider(), claims("referent@test.invalid"),
                          second_factor_everyone=False)
    later = claims("referent@test.invalid", subject="sub-of-the-next-person")
    assert refusal(db_session, vault, provider(), later) == "subject_mismatch"
    assert db_session.scalars(select(OidcLink.subject)).all() == [
        "sub-referent@test.invalid"]


def test_accounts_that_need_a_second_factor_need_the_providers_two_factor_acr(
        world, db_session, vault):
    assert refusal(db_session, vault, provider(), claims("dpo@test.invalid")) == \
        "second_factor"
    sign_in.with_provider(db_session, vault, provider(), claims("dpo@test.invalid",
                                                                acr=TWO_FACTORS),
                          second_factor_everyone=False)
    with pytest.raises(sign_in.SignInRefused):
        sign_in.with_provider(db_session, vault, provider(),
                              claims("facilitator@test.invalid"), second_factor_everyone=True)
    reasons = db_session.scalars(select(AuditEvent.purpose).where(
        AuditEvent.action == "login_failed")).all()
    assert reasons == ["oidc:proconnect:second_factor"] * 2


def test_a_setting_makes_the_second_factor_mandatory_for_everyone(world, db_session, vault):
    outcome = sign_in.with_password(db_session, vault, "facilitator@test.invalid", PASSWORD,
                                    "192.0.2.1", second_factor_everyone=False)
    assert outcome.next_step == sign_in.SIGNED_IN
    outcome = sign_in.with_password(db_session, vault, "facilitator@test.invalid", PASSWORD,
                                    "192.0.2.1", second_factor_everyone=True)
    assert outcome.next_step == sign_in.ENROLMENT_NEEDED
    outcome = sign_in.with_password(db_session, vault, "admin@test.invalid", PASSWORD,
                                    "192.0.2.1", second_factor_everyone=False)
    assert outcome.next_step == sign_in.CODE_NEEDED
