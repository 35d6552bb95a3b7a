"""The one place that declares which columns are encrypted, under which chain and class.

Classes (docs/security.md, rule 1): IDENTIFYING fields use the identity chain; SENSITIVE and
SITUATIONAL ones the content chain. Decrypting an identifying or sensitive field is audited.
"""

from __future__ import annotations

from dataclasses import dataclass

IDENTIFYING = "identifying"
SENSITIVE = "sensitive"
SITUATIONAL = "situational"
# A sign-in secret (a TOTP seed): the identity chain, which the worker never holds; opening
# it is not audited on its own, the sign-in it serves is.
CREDENTIAL = "credential"

CHAIN_OF_CLASS = {IDENTIFYING: "identity", SENSITIVE: "content", SITUATIONAL: "content",
                  CREDENTIAL: "identity"}


@dataclass(frozen=True)
class ProtectedField:
    table: str
    name: str
    data_class: str

    @property
    def chain(self) -> str:
        return CHAIN_OF_CLASS[self.data_class]

    @property
    def audited(self) -> bool:
        return self.data_class in (IDENTIFYING, SENSITIVE)


_DECLARATIONS: dict[str, dict[str, str]] = {
    "identity_records": {
        "nom": IDENTIFYING,
        "prenom": IDENTIFYING,
        "nom_naissance": IDENTIFYING,
        "date_naissance": IDENTIFYING,
        "numero_caf": IDENTIFYING,
        "identifiant_france_travail": IDENTIFYING,
        "adresse": IDENTIFYING,
        "code_postal": IDENTIFYING,
        "commune": IDENTIFYING,
        "telephone": IDENTIFYING,
        "email": IDENTIFYING,
    },
    # One encrypted JSON column per data class; each field's class: shared/sheet_schema.py.
    "sheets": {
        "situation_data": SITUATIONAL,
        "sensitive_data": SENSITIVE,
        "referent_data": IDENTIFYING,
    },
    "sheet_events": {"comment": SITUATIONAL},
    "form_stashes": {"payload": IDENTIFYING},  # may hold anything typed, identity included
    "decisions": {"motivation": SITUATIONAL},
    "decision_actions": {"label": SITUATIONAL},
    "formal_decisions": {"detail": SITUATIONAL},
    "avis_revisions": {"previous": SITUATIONAL},
    "global_supports": {"diagnostic_categories": SENSITIVE},
    "generated_documents": {"body": SITUATIONAL, "pdf_body": SITUATIONAL},
    "second_factors": {"secret": CREDENTIAL},
}

PROTECTED_FIELDS: dict[str, dict[str, ProtectedField]] = {
    table: {name: ProtectedField(table, name, cls) for name, cls in fields.items()}
    for table, fields in _DECLARATIONS.items()
}

IDENTITY_FIELDS = tuple(PROTECTED_FIELDS["identity_records"])


def protected_field(table: str, name: str) -> ProtectedField:
    """The declaration of one protected column; KeyError for anything undeclared."""
    return PROTECTED_FIELDS[table][name]
