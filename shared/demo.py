"""Demo data for a fresh instance: reference data, one account per role, synthetic people.

Every value is synthetic. Identities come from small built-in lists, or from a CSV file
(``icli demo --people``) whose bad rows are reported by line number, never by value.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db import paris_to_utc
from shared.domain import audit
from shared.domain.beneficiaries import (
    DEFAULT_INDEX_BITS,
    Identity,
    create_beneficiary,
    validate_identity,
)
from shared.domain.meetings import (
    ActionInput,
    add_partnership_item,
    adjourn,
    candidate_sheets,
    create_meeting,
    inscribe_sheet,
    nth_weekday,
    plan_from_schedule,
    record_answers,
    record_attendance,
    record_avis,
    save_member,
    save_schedule,
)
from shared.domain.meetings import transition as meeting_transition
from shared.domain.partnership import record_outcome as record_partnership_outcome
from shared.domain.reference import ensure_reference_defaults, reference_labels
from shared.domain.sheet_workflow import submit, transition
from shared.domain.sheets import start_sheet, write_values
from shared.domain.users import RoleSpec, create_user, generate_password
from shared.encrypted import Vault
from shared.errors import InvalidInputError
from shared.models import Circonscription, Structure, User

CIRCONSCRIPTIONS = [
    ("C01", "Saint-Denis"), ("C02", "Aubervilliers"), ("C03", "Montreuil"),
    ("C04", "Bobigny"), ("C05", "Sevran"),
]
POSTCODES = {"Saint-Denis": "93200", "Aubervilliers": "93300", "Montreuil": "93100",
             "Bobigny": "93000", "Sevran": "93270"}

PEOPLE_HEADER = ["nom", "prenom", "date_naissance", "numero_caf", "identifiant_france_travail",
                 "adresse", "code_postal", "commune", "telephone", "email"]

_SURNAMES = ["Marchetti", "Benali", "Nguyen", "Diallo", "Lefort", "Kowalczyk", "Haddad",
             "Fernandes", "Traoré", "Da Silva", "Moreau", "Ben Youssef", "Okafor", "Petitjean"]
_FIRST_NAMES = ["Inès", "Karim", "Aminata", "Jean-Luc", "Sofia", "Mamadou", "Léa", "Yacine",
                "Hélène", "Dragan", "Fatoumata", "Noé", "Chloé", "Rachid"]
_STREETS = ["rue de la République", "avenue Jean Jaurès", "allée des Tilleuls",
            "boulevard Félix Faure", "rue Gabriel Péri"]
_MOTIFS = ["reorientation", "situation_complexe", "parcours_bloque", "acco_glo", "adhesion"]
_SITUATIONS = [
    "Personne isolée, au RSA depuis plus de cinq ans, en parcours social. Freins de santé et "
    "de mobilité ; démarches d'accès aux soins engagées.",
    "Parent isolé avec deux enfants, recherche d'un mode de garde pour engager une formation "
    "qualifiante dans la logistique.",
    "Parcours professionnel interrompu ; hébergement chez un tiers ; souhaite reprendre une "
    "activité dans le bâtiment.",
]
_QUESTIONS = [
    "Une réorientation vers l'ALI est-elle pertinente au regard des freins identifiés ?",
    "L'instance peut-elle appuyer une entrée en accompagnement global ?",
    "Quelles ressources partenariales mobiliser pour lever le frein de garde d'enfants ?",
]


@dataclass
class DemoResult:
    accounts: list[tuple[str, str]] = field(default_factory=list)  # (e-mail, role label)
    password: str = ""
    password_generated: bool = False
    people: int = 0
    sheets: int = 0
    rejected_rows: list[tuple[int, str]] = field(default_factory=list)


def demo_values(n: int) -> dict:
    """Complete, pseudonymous sheet content (no name, address or number in the texts)."""
    return {
        "referent_fonction": "Assistante sociale", "situation_familiale": "isole",
        "enfants_a_charge": n % 3, "anciennete_rsa": ["moins_1", "2_5", "plus_5"][n % 3],
        "orientation": ["social", "socio_pro", "pro"][n % 3], "contrat": "contrat_engagement",
        "contrat_signe": "oui", "duree_activite": "15h", "inscription_ft": "inscrit",
        "formation": "5", "experience": "intermittence", "logement": "temporaire",
        "parcours": _SITUATIONS[n % 3],
        "freins": {"mobilite": "important", "garde": "leger"} if n % 2 else {"sante": "bloquant"},
        "actions": [{"action": "Atelier de recherche d'emploi", "structure": "ALI",
                     "debut": "2026-03-02", "fin": "", "resultat": "En cours"}],
        "motif": _MOTIFS[n % len(_MOTIFS)], "question": _QUESTIONS[n % 3],
        "proposition": "Réorientation vers l'ALI avec appui de l'instance.",
        "personne_informee": "oui", "date_information": "2026-10-01",
        "position_personne": "accord", "urgent": "non",
    }


def database_is_empty(session: Session) -> bool:
    return session.scalar(select(func.count()).select_from(User)) == 0


def read_people_csv(path: Path) -> tuple[list[Identity], list[tuple[int, str]]]:
    """Valid identities, and (line number, reason) for every refused row."""
    identities: list[Identity] = []
    errors: list[tuple[int, str]] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != PEOPLE_HEADER:
            return [], [(1, "en-tête attendu : " + ",".join(PEOPLE_HEADER))]
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(PEOPLE_HEADER):
                errors.append((line, f"{len(PEOPLE_HEADER)} colonnes attendues, {len(row)} lues"))
                continue
            identity = Identity(**{k: v.strip() for k, v in zip(PEOPLE_HEADER, row, strict=True)})
            problems = validate_identity(identity)
            if problems:
                errors.append((line, " ; ".join(problems)))
            else:
                identities.append(identity)
    return identities, errors


def synthetic_people(count: int, rng: random.Random) -> list[Identity]:
    people = []
    for n in range(count):
        commune = rng.choice(list(POSTCODES))
        nom, prenom = rng.choice(_SURNAMES), rng.choice(_FIRST_NAMES)
        born = date(1960, 1, 1) + timedelta(days=rng.randrange(0, 365 * 42))
        people.append(Identity(
            nom=nom, prenom=prenom, date_naissance=born.isoformat(),
            numero_caf=f"{rng.randrange(10**6, 10**7)}",
            identifiant_france_travail=f"{rng.randrange(10**6, 10**7)}{'ABCDEFGHJK'[n % 10]}",
            adresse=f"{rng.randrange(1, 120)} {rng.choice(_STREETS)}",
            code_postal=POSTCODES[commune], commune=commune,
            telephone=f"06{rng.randrange(10**7, 10**8)}",
            email=f"{prenom[0].lower()}.{n}@exemple.invalid",
        ))
    return people


def _of(town: str) -> str:
    """« de Montreuil », « d'Aubervilliers »."""
    return f"d'{town}" if town[0] in "AEIOUYÉÈÊ" else f"de {town}"


def seed_reference_data(session: Session) -> dict[str, Structure]:
    circs = {}
    for code, name in CIRCONSCRIPTIONS:
        circ = Circonscription(code=code, name=name)
        session.add(circ)
        circs[name] = circ
    session.flush()
    structures = {}
    for name, circ in circs.items():
        for kind, label in [
            ("service_social_departemental", f"Service social départemental {_of(name)}"),
            ("ali", f"ALI {_of(name)}"),
            ("agence_france_travail", f"France Travail {name}"),
        ]:
            structure = Structure(name=label, type=kind, circonscription=circ)
            session.add(structure)
            structures[label] = structure
    structures["association"] = Structure(name="Association Rebonds 93", type="association_rsa",
                                          circonscription=circs["Saint-Denis"])
    structures["dieess"] = Structure(name="DIEESS", type="dieess")
    session.add_all([structures["association"], structures["dieess"]])
    session.flush()
    return structures


def seed_demo(session: Session, vault: Vault, *, password: str | None = None,
              people: list[Identity] | None = None, sheets: int = 12,
              seed: int | None = None, index_bits: int = DEFAULT_INDEX_BITS) -> DemoResult:
    """Fill an empty database (refused otherwise), audited (``demo_seeded``); the caller
    commits."""
    if not database_is_empty(session):
        raise InvalidInputError("La base contient déjà des comptes : les données de démonstration "
                                "ne remplissent qu'une base vide.")
    rng = random.Random(seed)  # noqa: S311 - synthetic demo values, not secrets
    result = DemoResult(password=password or generate_password(),
                        password_generated=password is None)
    ensure_reference_defaults(session)
    structures = seed_reference_data(session)
    saint_denis = structures["ALI de Saint-Denis"].circonscription
    aubervilliers = structures["ALI d'Aubervilliers"].circonscription
    referent_structure = structures["Service social départemental de Saint-Denis"]
    accounts = [
        ("referente@icli.example", "Inès Référente (démo)",
         RoleSpec("referent", structure_id=referent_structure.id, manager=True)),
        ("referent.ali@icli.example", "Karim Référent ALI (démo)",
         RoleSpec("referent", structure_id=structures["ALI de Saint-Denis"].id)),
        ("animatrice@icli.example", "Sofia Animatrice (démo)",
         RoleSpec("facilitator", circonscription_ids=(saint_denis.id, aubervilliers.id))),
        ("directrice@icli.example", "Hélène Directrice territoriale (démo)",
         RoleSpec("director", institution="france_travail")),
        ("dga@icli.example", "Directeur général adjoint (démo)",
         RoleSpec("director", institution="departement")),
        ("admin@icli.example", "Admin (démo)", RoleSpec("admin")),
        ("dpo@icli.example", "Nadia Déléguée à la protection des données (démo)",
         RoleSpec("dpo")),
    ]
    users = {}
    for email, name, role in accounts:
        users[email] = create_user(session, email=email, full_name=name,
                                   password=result.password, role=role)
        result.accounts.append((email, users[email].role_labels[0]))

    identities = people if people is not None else synthetic_people(max(sheets, 1), rng)
    for identity in identities[sheets:]:  # people without a sheet yet
        create_beneficiary(session, vault, identity, referent_structure.id,
                           index_bits=index_bits)
    result.people = len(identities)

    filing = [referent_structure, structures["ALI de Saint-Denis"],
              structures["France Travail Saint-Denis"], structures["association"]]
    labels = reference_labels(session)
    past_day = _past_session_day(date.today())
    created = []
    for n, identity in enumerate(identities[:sheets]):
        structure = filing[n % len(filing)]
        author = {referent_structure.id: users["referente@icli.example"],
                  structures["ALI de Saint-Denis"].id: users["referent.ali@icli.example"],
                  }.get(structure.id)
        started = start_sheet(session, vault, structure=structure,
                              author_id=author.id if author else None, identity=identity,
                              index_bits=index_bits)
        write_values(vault, started.sheet, demo_values(n))
        if n % 3 != 2:  # two thirds submitted, half of those screened
            submit(session, vault, started.sheet, labels, actor_id=None)
            if n % 2 == 0:
                transition(session, vault, started.sheet, "accept", actor_id=None)
            _submitted_before(started.sheet, past_day - timedelta(days=15 + n))
        created.append(started.sheet)
    result.sheets = len(created)

    _demo_sessions(session, vault, saint_denis, structures, created, past_day)
    audit.record(session, vault.keyring, vault.actor, "demo_seeded",
                 purpose=f"{result.people} people, {result.sheets} sheets")
    return result


def _past_session_day(today: date) -> date:
    """The demo's held session: this month's second Tuesday if already past, else last
    month's."""
    past_day = nth_weekday(today.year, today.month, 1, 2)
    if past_day >= today:
        last_month = today.replace(day=1) - timedelta(days=1)
        past_day = nth_weekday(last_month.year, last_month.month, 1, 2)
    return past_day


def _submitted_before(sheet, day: date) -> None:
    """Date the demo sheet's submission (and screening) before the held session, as in real
    life: submitted today, it would give the statistics a negative delay (issue 15)."""
    moment = paris_to_utc(datetime.combine(day, time(10, 0)))
    sheet.submitted_at = moment
    for event in sheet.events:
        event.at = moment


def _demo_sessions(session: Session, vault: Vault, circ: Circonscription,
                   structures: dict[str, Structure], sheets: list, past_day: date) -> None:
    """A past session held (minutes written), the next one with sheets inscribed, one
    planned."""
    for number, (name, function, key, kind, acco) in enumerate([
        ("Chef de circonscription (démo)", "Responsable", "Service social départemental de "
         "Saint-Denis", "permanent", False),
        ("Directrice ALI (démo)", "Direction", "ALI de Saint-Denis", "permanent", False),
        ("Conseiller France Travail (démo)", "Conseiller", "France Travail Saint-Denis",
         "permanent", False),
        ("Conseillère ACCO GLO (démo)", "Accompagnement global", "France Travail Saint-Denis",
         "invite", True),
    ], 1):
        save_member(session, None, circonscription_id=circ.id, structure_id=structures[key].id,
                    name=name, function=function, kind=kind, acco_glo=acco, active=True,
                    email=f"membre{number}@demo.invalid")
    schedule = save_schedule(session, circ, weekday=1, week_of_month=2, at="14:00",
                             place="Maison de l'emploi, salle 2, Saint-Denis", video_link="",
                             cutoff_days=10, dossier_days=5)
    screened = [s for s in sheets if s.status == "recevable"]

    # A session held last month: planned back then.
    past = create_meeting(session, circ, datetime.combine(past_day, time(14, 0)),
                          schedule.place, today=past_day - timedelta(days=30))
    add_partnership_item(session, vault, past, "Présentation du dispositif de garde solidaire",
                         presenter_structure="CCAS de Saint-Denis",
                         presenter_role="Responsable petite enfance", time_slot="14:00")
    for sheet, slot in zip(screened[:2], ("14:30", "14:50"), strict=False):
        inscribe_sheet(session, vault, past, sheet, slot)
    record_answers(session, vault, past, {m.id: ("confirme", "") for m in past.members})
    meeting_transition(session, vault, past, "convene")
    record_attendance(session, vault, past, {m.id: ("present" if n else "excuse", "")
                                             for n, m in enumerate(past.members)})
    meeting_transition(session, vault, past, "hold")
    situations = [i for i in past.items if i.sheet is not None]
    if situations:
        record_avis(session, vault, past, situations[0].id, avis="reorientation_socio_pro",
                    avis_codes={"reorientation_socio_pro"},
                    motivation="Freins de garde levés ; projet de formation à consolider.",
                    actions=[ActionInput("Prendre contact avec l'ALI", structures[
                        "ALI de Saint-Denis"].id, past_day + timedelta(days=21)),
                             ActionInput("Bilan de la formation", None,
                                         past_day + timedelta(days=60))],
                    come_back_on=None, formal_decision_by="departement")
    for item in situations[1:]:
        adjourn(session, vault, past, item.id, "Diagnostic partagé à compléter.")
    partnership_item = next(i for i in past.items if i.part == "partenariat")
    record_partnership_outcome(
        session, vault, past, partnership_item.id,
        summary="Places de garde solidaire ouvertes aux parents en parcours d'insertion.",
        next_step="Diffuser la fiche contact aux référent·e·s de la circonscription.",
        follow_up_on=past_day + timedelta(days=45))
    # Its minutes are written: the facilitator generates them and sends them for the visas.
    for action in ("finish_avis", "write_minutes"):
        meeting_transition(session, vault, past, action)

    upcoming, *_later = sorted(plan_from_schedule(session, schedule, months=3),
                               key=lambda m: m.starts_at)
    add_partnership_item(session, vault, upcoming, "Présentation du PLIE de Plaine Commune",
                         presenter_structure="PLIE de Plaine Commune",
                         presenter_role="Chargée de mission", time_slot="14:00")
    slot = datetime.combine(upcoming.day, time(14, 30))
    for sheet in candidate_sheets(session, upcoming)[:4]:
        inscribe_sheet(session, vault, upcoming, sheet, slot.strftime("%H:%M"))
        slot += timedelta(minutes=20)
