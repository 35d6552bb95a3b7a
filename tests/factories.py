"""Synthetic test data. Canary values are distinctive so leak scans cannot miss them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pyotp

from shared.db import new_uuid, utcnow
from shared.demo import demo_values
from shared.domain.beneficiaries import Identity
from shared.domain.meetings import add_partnership_item, create_meeting, inscribe_sheet
from shared.domain.reference import reference_labels
from shared.domain.sheet_workflow import submit, transition
from shared.domain.sheets import start_sheet, write_values
from shared.domain.users import RoleSpec, create_user
from shared.models import Circonscription, RecoveryCode, SecondFactor, Structure
from shared.passwords import hash_password
from shared.text import FRENCH_MONTHS

PASSWORD = "correct-horse-battery-93"
# The day the tests' sessions at fixed dates are planned on: a session cannot be planned in
# the past, and these dates stay in the future of that day whenever the tests run.
PLANNED_ON = date(2025, 1, 6)


def canary_identity(n: int = 0) -> Identity:
    """An identity made of values found nowhere else, to scan files and Redis for. Each
    ``n`` is a distinct person: the duplicate search ignores digits, so ``n`` is spelt in
    letters too (otherwise 0 and 9 would share name and birth date: the same person)."""
    letters = "".join(chr(ord("a") + int(d)) for d in str(n))
    return Identity(
        nom=f"Zyxcanari{n}{letters}", prenom=f"Qwertinette{n}", nom_naissance=f"Vorpalnee{n}",
        date_naissance="1981-04-0" + str(1 + n % 9), numero_caf=f"97{n:05d}31",
        identifiant_france_travail=f"8{n:05d}7Q",
        adresse=f"{n + 7} impasse Xylocanari", code_postal="93200", commune="Saint-Denis",
        telephone=f"07{n:08d}", email=f"canari.{n}@leak-probe.invalid",
    )


def canary_values(identity: Identity) -> list[str]:
    """The identity's distinctive values, the birth date in every form a document may use."""
    born = date.fromisoformat(identity.date_naissance)
    return [identity.nom, identity.prenom, identity.nom_naissance, identity.numero_caf,
            identity.identifiant_france_travail, identity.adresse, identity.telephone,
            identity.email, identity.date_naissance, born.strftime("%d/%m/%Y"),
            born.strftime("%d.%m.%Y"), f"{born.day} {FRENCH_MONTHS[born.month - 1]} {born.year}"]


# The TOTP secret of the second factors the factories enrol (administrators and the DPO must
# have one), and their recovery codes; a login helper types their codes (``second_factor_code``).
SECOND_FACTOR_SECRET = "JBSWY3DPEHPK3PXPTESTSECRETICLIAB"
RECOVERY_CODES = tuple(f"testsecours{n:02d}" for n in range(10))


@dataclass
class _KnownFactor:
    secret: str
    last_step: int = 0  # the application accepts each step once, and one step early or late
    recovery_codes: list[str] = field(default_factory=list)


_SECOND_FACTORS: dict[str, _KnownFactor] = {}


def enrol_second_factor(session, vault, user) -> None:
    """A confirmed second factor with a known secret and recovery codes, as if the user had
    enrolled."""
    factor = SecondFactor(uuid=new_uuid(), user_id=user.id, confirmed_at=utcnow(),
                          last_step=0)
    vault.seal(factor, "secret", SECOND_FACTOR_SECRET)
    session.add(factor)
    session.add_all(RecoveryCode(user_id=user.id, code_hash=hash_password(code))
                    for code in RECOVERY_CODES)
    session.flush()
    remember_second_factor(user.email, SECOND_FACTOR_SECRET, RECOVERY_CODES)


def remember_second_factor(email: str, secret: str, recovery_codes=()) -> None:
    _SECOND_FACTORS[email] = _KnownFactor(secret, recovery_codes=list(recovery_codes))


def second_factor_code(email: str) -> str:
    """A code the application accepts now for this account: the current step's code, or the
    next step's if this one was used; past that, a recovery code (several sign-ins of one
    account within the same half-minute)."""
    known = _SECOND_FACTORS[email]
    totp = pyotp.TOTP(known.secret)
    step = max(totp.timecode(datetime.now(UTC)), known.last_step + 1)
    if step > totp.timecode(datetime.now(UTC)) + 1:
        assert known.recovery_codes, f"no TOTP step nor recovery code left for {email}"
        return known.recovery_codes.pop(0)
    known.last_step = step
    return totp.generate_otp(step)


def reference_data(session):
    north = Circonscription(code="C01", name="Saint-Denis")
    south = Circonscription(code="C02", name="Montreuil")
    session.add_all([north, south])
    session.flush()
    structures = {
        "ssd": Structure(name="Service social départemental de Saint-Denis",
                         type="service_social_departemental", circonscription=north),
        "ali": Structure(name="ALI de Saint-Denis", type="ali", circonscription=north),
        "other": Structure(name="ALI de Montreuil", type="ali", circonscription=south),
    }
    session.add_all(structures.values())
    session.flush()
    return north, south, structures


def users_for_every_role(session, vault, north, south, structures):
    specs = {
        "referent": RoleSpec("referent", structure_id=structures["ssd"].id),
        "other_referent": RoleSpec("referent", structure_id=structures["other"].id),
        "facilitator": RoleSpec("facilitator", circonscription_ids=(north.id,)),
        "other_facilitator": RoleSpec("facilitator", circonscription_ids=(south.id,)),
        "director": RoleSpec("director", institution="departement"),
        "other_director": RoleSpec("director", institution="france_travail"),
        "admin": RoleSpec("admin"),
        "dpo": RoleSpec("dpo"),
    }
    accounts = {
        name: create_user(session, email=f"{name.replace('_', '.')}@test.invalid",
                          full_name=f"Test {name}", password=PASSWORD, role=spec)
        for name, spec in specs.items()
    }
    for name in ("admin", "dpo"):  # their second factor is mandatory
        enrol_second_factor(session, vault, accounts[name])
    return accounts


def meeting_with_agenda(session, vault, north, structures, people: int = 2):
    """A session of ``north`` with a partnership item and ``people`` inscribed sheets."""
    meeting = create_meeting(session, north, datetime(2026, 12, 15, 14, 0),
                             "Salle 2 & \"annexe\" <rdc>", today=PLANNED_ON)
    add_partnership_item(session, vault, meeting, "Présentation de l'ALI",
                         presenter_structure="ALI de Saint-Denis", presenter_role="Directrice")
    identities = [canary_identity(n) for n in range(people)]
    sheets = []
    for n, identity in enumerate(identities):
        sheet = make_sheet(session, vault, structures["ssd"], identity, status="recevable")
        inscribe_sheet(session, vault, meeting, sheet,
                       (datetime(2026, 12, 15, 14, 30) + timedelta(minutes=20 * n))
                       .strftime("%H:%M"))
        sheets.append(sheet)
    session.flush()
    return meeting, sheets, identities


def make_sheet(session, vault, structure, identity, *, author_id=None, status="brouillon",
               values=None):
    """A sheet with complete pseudonymous content, moved along the workflow to ``status``."""
    sheet = start_sheet(session, vault, structure=structure, author_id=author_id,
                        identity=identity).sheet
    write_values(vault, sheet, values if values is not None else demo_values(0))
    path = {"brouillon": [], "soumise": ["submit"], "recevable": ["submit", "accept"],
            "a_completer": ["submit", "return"]}[status]
    for action in path:
        if action == "submit":
            submit(session, vault, sheet, reference_labels(session), actor_id=author_id)
        else:
            transition(session, vault, sheet, action, actor_id=None, reason="Test.")
    session.flush()
    return sheet
