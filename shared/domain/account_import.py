"""Import of reference data and accounts from a CSV file: circonscriptions, structures,
accounts with their role, members of the instances. The admin page and the API make the same
call (``import_csv``).

- One kind per file, the first line naming the columns (``COLUMNS``; order free, extra
  columns refused so that a typo is not silently ignored).
- Encoding: UTF-8 with or without a byte-order mark, or UTF-16 with its mark (Excel's
  « Texte Unicode »); anything else (Latin-1, Windows-1252) is refused with the line of the
  first byte that is not UTF-8, rather than guessed and saved misspelt. Separator: « ; »,
  « , » or a tab, read from the first line.
- Spreadsheet formulas are refused, not neutralised: a cell starting with « = », « + »,
  « - » or « @ » (or a tab or carriage return before one) is an error with its line and
  column. Neutralising (a leading quote) would store a value nobody typed; none of these
  columns can legitimately start so.
- All or nothing: every line is checked against the database and the rest of the file
  before anything is written; one error and nothing is. A dry run stops there and lists
  what would change. Rows identical to what is stored change nothing: importing the same file
  twice writes nothing the second time.
- Values are named in errors by their line and column only, never quoted.
- A new account gets no usable password: it logs in through single sign-on, or after an
  administrator resets its password (bulk imports cannot show hundreds of one-time
  passwords). Existing accounts (same e-mail) get the file's name, role, scope and dates.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from shared.domain import audit, users
from shared.encrypted import Vault
from shared.errors import DomainError, InvalidInputError
from shared.models import Circonscription, Member, RoleAssignment, Structure, User
from shared.models.meeting import MEMBER_KINDS
from shared.models.reference import STRUCTURE_TYPES
from shared.text import canonical, clean_text

MAX_ROWS = 20_000
MAX_ERRORS = 50  # listed; the count says how many more
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A password hash argon2 can never match: the account needs SSO or a reset first.
UNUSABLE_HASH = "!import"
YES = {"oui", "o", "1", "vrai", "x"}
NO = {"non", "n", "0", "faux"}
# Roles as a file names them: the French words, or the codes. Administrators and the DPO are
# not imported, and an import never changes their accounts: a file (or an API token allowed
# to import) must not be a way to make or unmake one. They are set one by one, on their page.
ROLE_WORDS = {"referent": "referent", "référent": "referent", "animation": "facilitator",
              "cat": "facilitator", "direction": "director",
              **{code: code for code in ("facilitator", "director")}}
PRIVILEGED_ROLES = {"admin", "dpo"}

KINDS = {
    "circonscriptions": "Circonscriptions",
    "structures": "Structures",
    "comptes": "Comptes et rôles",
    "membres": "Membres des instances",
}
# Required columns, then optional ones.
COLUMNS = {
    "circonscriptions": (("code", "nom"), ("active",)),
    "structures": (("nom", "type"), ("circonscription", "active")),
    "comptes": (("email", "nom", "role"),
                ("structure", "responsable", "circonscriptions", "institution",
                 "debut_habilitation", "fin_habilitation")),
    "membres": (("circonscription", "nom"),
                ("fonction", "email", "structure", "statut", "acco_glo", "suppleant",
                 "actif")),
}


@dataclass(frozen=True)
class Change:
    line: int
    action: str  # "création" or "modification"
    key: str  # the code, name or e-mail that identifies the row
    fields: tuple[str, ...] = ()


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    changes: list[Change] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    applied: bool = False

    def error(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(f"Ligne {line} : {message}")

    @property
    def unchanged(self) -> int:
        return self.rows - len(self.changes)


class RowError(Exception):
    """One line's problem; the message names the column, never the value."""


def import_csv(session: Session, vault: Vault, kind: str, data: bytes, *,
               dry_run: bool) -> ImportReport:
    """Check the whole file, then (unless ``dry_run`` or an error) apply every change in
    the caller's transaction. Audited (``import_applied``: the kind, the ids created or
    changed) when something changed; a dry run or an import that changes nothing writes
    nothing. The caller commits, or rolls back when the report has errors."""
    if kind not in KINDS:
        raise InvalidInputError("Type d'import inconnu.")
    report = ImportReport(kind=kind)
    rows = read_rows(data, kind, report)  # the lines that can be checked further
    planner = _PLANNERS[kind](session)
    staged: list[Callable[[], object]] = []
    for line, row in rows:
        try:
            change, apply = planner.plan(line, row)
        except (RowError, DomainError) as exc:
            report.error(line, getattr(exc, "message", None) or str(exc))
            continue
        if change is not None:
            report.changes.append(change)
            staged.append(apply)
    planner.check(report)
    report.rows = len(rows)
    if report.error_count or dry_run or not report.changes:
        return report
    touched = [apply() for apply in staged]
    session.flush()
    ids = [obj.id for obj in touched if obj is not None] + planner.finish()
    audit.record(session, vault.keyring, vault.actor, "import_applied",
                 object_type=kind, object_ids=sorted(ids),
                 purpose=f"{len(report.changes)} ligne(s) modifiée(s) sur {report.rows}")
    report.applied = True
    return report


# -- reading the file ------------------------------------------------------------------------
def decode(data: bytes) -> str:
    """The file's text, or InvalidInputError saying which line is not UTF-8."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise InvalidInputError("Le fichier annonce l'encodage UTF-16 mais ne le "
                                    "respecte pas.") from None
    if b"\x00" in data:
        raise InvalidInputError("Le fichier contient des octets nuls : enregistrez-le au "
                                "format « CSV UTF-8 ».")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InvalidInputError(f"Ligne {line} : le fichier n'est pas encodé en UTF-8 "
                                "(probablement Latin-1 ou Windows-1252). Dans le tableur, "
                                "enregistrez-le au format « CSV UTF-8 ».") from None


def read_rows(data: bytes, kind: str, report: ImportReport) -> list[tuple[int, dict]]:
    """(line number, {column: stripped value}) for each non-empty line after the header;
    a line with a formula or a wrong number of cells is reported, not returned."""
    try:
        text = decode(data)
    except InvalidInputError as exc:
        report.error_count += 1
        report.errors.append(exc.message)
        return []
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        report.error(1, "la première ligne doit nommer les colonnes.")
        return []
    header_line = lines[0]
    delimiter = max((";", ",", "\t"), key=header_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [name.strip().lower() for name in next(reader)]
        required, optional = COLUMNS[kind]
        missing = [name for name in required if name not in header]
        unknown = [name for name in header if name not in required + optional]
        if missing or unknown or len(set(header)) != len(header):
            expected = ", ".join(required) + " (et, si besoin : " + ", ".join(optional) + ")"
            report.error(1, f"colonnes attendues pour « {KINDS[kind]} » : {expected}.")
            return []
        rows = []
        ended = reader.line_num  # where the previous record ended
        for values in reader:
            # A record's own first line: a quoted cell may span several lines of the file.
            line, ended = ended + 1, reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(rows) >= MAX_ROWS:
                report.error(line, f"le fichier dépasse {MAX_ROWS} lignes ; découpez-le.")
                return []
            if len(values) != len(header):
                report.error(line, f"{len(values)} colonne(s) au lieu de {len(header)}.")
                continue
            # Checked on the value as it would be stored (normalised, trimmed): a non-breaking
            # space, a line break or a full-width « ＝ » before the sign hides nothing.
            formulas = [name for name, value in zip(header, values, strict=True)
                        if canonical(value).strip().startswith(FORMULA_STARTS)]
            for name in formulas:
                report.error(line, f"colonne « {name} » : une cellule ne peut pas commencer "
                                   "par « = », « + », « - » ou « @ » (formule de tableur "
                                   "refusée).")
            if not formulas:
                rows.append((line, {name: value.strip()
                                    for name, value in zip(header, values, strict=True)}))
    except csv.Error:
        report.error(reader.line_num, "ligne illisible (guillemets mal fermés ou cellule de "
                                      "plus de 128 000 caractères).")
        return []
    return rows


# -- checking and planning each kind ---------------------------------------------------------
def _flag(row: dict, name: str, default: bool) -> bool:
    value = row.get(name, "").lower()
    if value == "":
        return default
    if value in YES:
        return True
    if value in NO:
        return False
    raise RowError(f"colonne « {name} » : « oui » ou « non » attendu.")


def _date(row: dict, name: str) -> date | None:
    value = row.get(name, "")
    if not value:
        return None
    for parse in (date.fromisoformat, _french_date):
        try:
            return parse(value)
        except ValueError:
            continue
    raise RowError(f"colonne « {name} » : date attendue au format JJ/MM/AAAA.")


def _french_date(value: str) -> date:
    day, month, year = value.split("/")
    if len(year) != 4:
        raise ValueError(value)
    return date(int(year), int(month), int(day))


def _text(row: dict, name: str, limit: int, required: bool = False) -> str:
    try:
        return clean_text(row.get(name, ""), label=f"colonne « {name} »", limit=limit,
                          required=required)
    except InvalidInputError as exc:
        raise RowError(exc.message) from None


class _Planner:
    """Loads what exists once; ``plan`` checks one line and returns its change (None when
    the line matches what is stored) with the function that applies it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.seen: dict[str, int] = {}
        self.circonscriptions = {c.code: c for c in session.scalars(select(Circonscription))}
        self.structures: dict[str, list[Structure]] = {}
        for structure in session.scalars(select(Structure)):
            self.structures.setdefault(structure.name.casefold(), []).append(structure)

    def once(self, line: int, key: str) -> None:
        folded = key.casefold()
        if folded in self.seen:
            raise RowError(f"cette ligne répète la ligne {self.seen[folded]}.")
        self.seen[folded] = line

    def circonscription(self, code: str, column: str = "circonscription") -> Circonscription:
        found = self.circonscriptions.get(code.upper())
        if found is None:
            raise RowError(f"colonne « {column} » : circonscription inconnue (importez "
                           "d'abord les circonscriptions).")
        return found

    def structure(self, name: str) -> Structure:
        found = self.structures.get(name.casefold(), [])
        if len(found) != 1:
            raise RowError("colonne « structure » : structure " + (
                "inconnue (importez d'abord les structures)." if not found
                else "ambiguë (plusieurs structures portent ce nom)."))
        return found[0]

    def check(self, report: ImportReport) -> None:
        """After every line is planned: what depends on the other lines."""

    def finish(self) -> list[int]:
        """After every change is applied: links between rows of the file, rows inserted in
        bulk. Returns the ids of the rows it inserted."""
        return []


def _changed(obj: object, wanted: dict) -> tuple[str, ...]:
    return tuple(name for name, value in wanted.items() if getattr(obj, name) != value)


def _set(obj: object, wanted: dict) -> object:
    for name, value in wanted.items():
        setattr(obj, name, value)
    return obj


class _Circonscriptions(_Planner):
    def plan(self, line: int, row: dict):
        code = row["code"].upper()
        if not code.isalnum() or not 2 <= len(code) <= 8 or not code.isascii():
            raise RowError("colonne « code » : 2 à 8 lettres ou chiffres.")
        self.once(line, code)
        wanted = {"name": _text(row, "nom", 120, required=True),
                  "active": _flag(row, "active", True)}
        existing = self.circonscriptions.get(code)
        if existing is None:
            def create():
                circ = Circonscription(code=code, **wanted)
                self.session.add(circ)
                return circ
            return Change(line, "création", code), create
        changed = _changed(existing, wanted)
        return (Change(line, "modification", code, changed),
                lambda: _set(existing, wanted)) if changed else (None, None)


class _Structures(_Planner):
    def plan(self, line: int, row: dict):
        name = _text(row, "nom", 160, required=True)
        self.once(line, name)
        kind = row["type"]
        if kind not in STRUCTURE_TYPES:
            raise RowError("colonne « type » : attendu l'un de "
                           + ", ".join(STRUCTURE_TYPES) + ".")
        circ = (self.circonscription(row["circonscription"]).id
                if row.get("circonscription") else None)
        wanted = {"type": kind, "circonscription_id": circ,
                  "active": _flag(row, "active", True)}
        found = self.structures.get(name.casefold(), [])
        if len(found) > 1:
            raise RowError("colonne « nom » : plusieurs structures portent déjà ce nom.")
        if not found:
            def create():
                structure = Structure(name=name, **wanted)
                self.session.add(structure)
                return structure
            return Change(line, "création", name), create
        changed = _changed(found[0], wanted)
        return (Change(line, "modification", name, changed),
                lambda: _set(found[0], wanted)) if changed else (None, None)


class _Accounts(_Planner):
    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.accounts = {u.email: u for u in session.scalars(select(User))}
        self.new: list[tuple[dict, list[dict]]] = []

    def finish(self) -> list[int]:
        """New accounts in two bulk inserts (ten thousand lines: 20 times faster than one
        object per account)."""
        if not self.new:
            return []
        created = dict(self.session.execute(
            insert(User).returning(User.email, User.id),
            [{**values, "password_hash": UNUSABLE_HASH, "must_change_password": True}
             for values, _ in self.new]).all())
        self.session.execute(insert(RoleAssignment), [
            {**assignment, "user_id": created[values["email"]]}
            for values, scope in self.new for assignment in scope])
        return list(created.values())

    def plan(self, line: int, row: dict):
        try:
            email = users.valid_email(row["email"])
        except InvalidInputError as exc:
            raise RowError(f"colonne « email » : {exc.message}") from None
        self.once(line, email)
        full_name = _text(row, "nom", 160, required=True)
        role = ROLE_WORDS.get(row["role"].lower())
        if role is None:
            raise RowError("colonne « role » : attendu referent, animation ou direction (les "
                           "comptes d'administration et de DPO se créent un par un, sur leur "
                           "page).")
        scope = self._scope(role, row)
        habilitation = (_date(row, "debut_habilitation"), _date(row, "fin_habilitation"))
        users.check_habilitation(*habilitation)
        wanted = {"full_name": full_name, "habilitation_starts_on": habilitation[0],
                  "habilitation_ends_on": habilitation[1]}
        existing = self.accounts.get(email)
        if existing is not None and {a.role for a in existing.roles} & PRIVILEGED_ROLES:
            raise RowError("ce compte est un compte d'administration ou de DPO : il se modifie "
                           "sur sa page, jamais par un import.")
        if existing is None:
            return Change(line, "création", email), lambda: self.new.append(
                ({"email": email, **wanted}, scope))
        changed = _changed(existing, wanted)
        current = {tuple(sorted((k, v) for k, v in _assignment(a).items()))
                   for a in existing.roles}
        if current != {tuple(sorted(a.items())) for a in scope}:
            changed += ("role",)
        if not changed:
            return None, None

        def update():
            _set(existing, wanted)
            if "role" in changed:
                existing.roles = [RoleAssignment(**a) for a in scope]
                users.end_sessions(self.session, existing)
            return existing
        return Change(line, "modification", email, changed), update

    def _scope(self, role: str, row: dict) -> list[dict]:
        """The role's assignments, checked by the rule account forms use
        (``users.role_assignments``) once the file's names and codes are resolved."""
        structure = self.structure(row["structure"]).id if row.get("structure") else None
        codes = sorted(set(row.get("circonscriptions", "").replace("|", " ").split()))
        spec = users.RoleSpec(role, structure_id=structure,
                              circonscription_ids=tuple(
                                  self.circonscription(code, "circonscriptions").id
                                  for code in codes),
                              manager=_flag(row, "responsable", False),
                              institution=row.get("institution") or None)
        try:
            return [_assignment(a) for a in users.role_assignments(self.session, spec)]
        except InvalidInputError as exc:
            raise RowError(f"colonne « role » : {exc.message}") from None


def _assignment(a: RoleAssignment) -> dict:
    return {"role": a.role, "structure_id": a.structure_id,
            "circonscription_id": a.circonscription_id, "is_manager": bool(a.is_manager),
            "institution": a.institution}


class _Members(_Planner):
    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.members = {(m.circonscription_id, m.name.casefold()): m
                        for m in session.scalars(select(Member))}
        # (line, member, suppléant): linked once every member of the file exists.
        self.substitutes: list[tuple[int, tuple[int, str], tuple[int, str] | None]] = []
        self.in_file: set[tuple[int, str]] = set()

    def plan(self, line: int, row: dict):
        circ = self.circonscription(row["circonscription"])
        name = _text(row, "nom", 160, required=True)
        self.once(line, f"{circ.code}\n{name}")
        email = row.get("email", "")
        if email:
            try:
                email = users.valid_email(email)
            except InvalidInputError as exc:
                raise RowError(f"colonne « email » : {exc.message}") from None
        kind = row.get("statut") or "permanent"
        if kind not in MEMBER_KINDS:
            raise RowError("colonne « statut » : attendu permanent ou invite.")
        wanted = {"function": _text(row, "fonction", 160), "email": email, "kind": kind,
                  "structure_id": self.structure(row["structure"]).id
                  if row.get("structure") else None,
                  "acco_glo": _flag(row, "acco_glo", False), "active": _flag(row, "actif", True)}
        key = (circ.id, name.casefold())
        self.in_file.add(key)
        substitute = _text(row, "suppleant", 160)
        if substitute.casefold() == name.casefold():
            raise RowError("colonne « suppleant » : un membre ne se supplée pas lui-même.")
        substitute_key = (circ.id, substitute.casefold()) if substitute else None
        self.substitutes.append((line, key, substitute_key))
        existing = self.members.get(key)
        substitute_changed = (existing is None and substitute_key is not None) or (
            existing is not None and _substitute_key(existing) != substitute_key)
        if existing is None:
            def create():
                member = Member(circonscription_id=circ.id, name=name, **wanted)
                self.session.add(member)
                self.members[key] = member
                return member
            return Change(line, "création", f"{circ.code} – {name}"), create
        changed = _changed(existing, wanted) + (("suppleant",) if substitute_changed else ())
        return (Change(line, "modification", f"{circ.code} – {name}", changed),
                lambda: _set(existing, wanted)) if changed else (None, None)

    def check(self, report: ImportReport) -> None:
        known = set(self.members) | self.in_file
        for line, _key, substitute_key in self.substitutes:
            if substitute_key and substitute_key not in known:
                report.error(line, "colonne « suppleant » : aucun membre de cette instance "
                                   "ne porte ce nom (ni dans la base, ni dans le fichier).")

    def finish(self) -> list[int]:
        for _line, key, substitute_key in self.substitutes:
            member = self.members[key]
            member.substitute = self.members[substitute_key] if substitute_key else None
        return []


def _substitute_key(member: Member) -> tuple[int, str] | None:
    substitute = member.substitute
    return (substitute.circonscription_id, substitute.name.casefold()) if substitute else None


_PLANNERS: dict[str, type[_Planner]] = {
    "circonscriptions": _Circonscriptions,
    "structures": _Structures,
    "comptes": _Accounts,
    "membres": _Members,
}
