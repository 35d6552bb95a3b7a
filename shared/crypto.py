"""The only module that touches key material (docs/security.md, rules 2-5, 8, 12).

- Fields: AES-256-GCM under a per-record data key (DEK), associated data binding the
  ciphertext to table, record uuid, field and versions. Format (base64 text):
  ``version byte ‖ algorithm byte ‖ 12-byte nonce ‖ ciphertext ‖ tag``.
- DEKs are wrapped (same format, raw bytes) by the primary key-encryption key (KEK) of
  their chain; KEKs are versioned and live in a keyring file outside the database.
- Separate purpose secrets (blind index, audit chain, job signing), never derived from a KEK.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import json
import math
import os
import secrets
import stat
import struct
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.files import write_private

FORMAT_VERSION = 1
ALG_AES256GCM = 1
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
HEADER_BYTES = 2

DATA_CHAINS = ("identity", "content")  # wrap DEKs
SECRET_CHAINS = ("index", "audit", "jobs")  # keyed hashes / MACs
ALL_CHAINS = DATA_CHAINS + SECRET_CHAINS

# The width of the indexes written before it depended on the population (migration 0016
# marks them so) and of the known-answer fixture; new ones take ``index_bits_for``.
BLIND_INDEX_BITS = 14
DEFAULT_EXPECTED_POPULATION = 100_000  # a département
# People per index value, counted over the values in use: with n people spread over 2**b
# values, lam = n / 2**b people per value on average, and a value in use holds
# lam / (1 - exp(-lam)) of them (Poisson). That is at least 2 from lam = 1.594 up.
MIN_PEOPLE_PER_VALUE = 2
POPULATION_RATIO = 10  # the index stays that blunt down to a tenth of the expected population

_FIELD_LABEL = "icli.field.v1"
_WRAP_LABEL = "icli.wrap.v1"
_INDEX_LABEL = "icli.index.v1"
KEYRING_FORMAT = 1


class CryptoError(Exception):
    """Base of every crypto failure; messages never carry plaintext or key material."""


class IntegrityError(CryptoError):
    """A ciphertext is malformed, tampered with, or bound to another place."""


class KeyNotFoundError(CryptoError):
    """A key version or chain this process does not hold."""


class KeyringError(CryptoError):
    """The keyring file is missing, unsafe or unreadable."""


class KeyMismatchError(KeyringError):
    """A key the keyring holds is not the one the database recorded for its chain and version
    (a keyring of another instance, or a key replaced): using it would seal data and audit
    rows nobody could read or verify with the right keyring."""

    def __init__(self, chain: str, version: int, reason: str = "") -> None:
        reason = reason or (f"is not the key this database recorded for {chain} v{version} "
                            "(wrong or replaced keyring)")
        super().__init__(f"keyring refused: {chain} v{version} {reason}")
        self.chain, self.version = chain, version


class Secret:
    """A decrypted value whose ``str``/``repr`` are redacted until ``reveal()`` is called."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    def __str__(self) -> str:
        return "<redacted>"

    def __html__(self) -> str:  # Jinja: a forgotten reveal() shows nothing personal
        return "[donnée protégée]"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):  # never pickled, cached or serialised by accident
        raise TypeError("Secret values cannot be serialised")


def _encode_parts(*parts: str | int) -> bytes:
    """Canonical length-prefixed encoding: no two part lists give the same bytes."""
    encoded = []
    for part in parts:
        data = (part if isinstance(part, str) else str(part)).encode("utf-8")
        encoded += (struct.pack(">I", len(data)), data)
    return b"".join(encoded)


# The constant leading parts, encoded once (a rotation builds two AADs per data key).
_FIELD_PREFIX = _encode_parts(_FIELD_LABEL, FORMAT_VERSION, ALG_AES256GCM)
_WRAP_PREFIX = _encode_parts(_WRAP_LABEL, FORMAT_VERSION, ALG_AES256GCM)
_HEADER = bytes((FORMAT_VERSION, ALG_AES256GCM))


def _field_aad(table: str, record_uuid: str, field: str, dek_version: int) -> bytes:
    return _FIELD_PREFIX + _encode_parts(table, record_uuid, field, dek_version)


def _wrap_aad(record_uuid: str, chain: str, dek_version: int, kek_version: int) -> bytes:
    return _wrap_aad_stem(record_uuid, chain, dek_version) + _encode_parts(kek_version)


def _wrap_aad_stem(record_uuid: str, chain: str, dek_version: int) -> bytes:
    """The AAD of a wrapped DEK but its KEK version (the encoding concatenates its parts)."""
    return _WRAP_PREFIX + _encode_parts(record_uuid, chain, dek_version)


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    return _seal_with(AESGCM(key), plaintext, aad, os.urandom(NONCE_BYTES))


def _seal_with(cipher: AESGCM, plaintext: bytes, aad: bytes, nonce: bytes) -> bytes:
    # The header is authenticated twice: in the AAD encoding and as literal prefix.
    return _HEADER + nonce + cipher.encrypt(nonce, plaintext, _HEADER + aad)


def _open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    return _open_with(AESGCM(key), blob, aad)


def _open_with(cipher: AESGCM, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < HEADER_BYTES + NONCE_BYTES + TAG_BYTES:
        raise IntegrityError("ciphertext too short")
    version, algorithm = blob[0], blob[1]
    if version != FORMAT_VERSION:
        raise IntegrityError(f"unknown ciphertext format version {version}")
    if algorithm != ALG_AES256GCM:
        raise IntegrityError(f"unknown ciphertext algorithm {algorithm}")
    nonce = blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
    try:
        return cipher.decrypt(nonce, blob[HEADER_BYTES + NONCE_BYTES :], _HEADER + aad)
    except InvalidTag:
        raise IntegrityError("ciphertext failed authentication") from None


def new_dek() -> bytes:
    """A fresh random 256-bit data key."""
    return AESGCM.generate_key(bit_length=256)


def seal_bytes(
    dek: bytes, *, table: str, record_uuid: str, field: str, dek_version: int, data: bytes
) -> bytes:
    """Encrypt raw bytes bound to (table, record, field, DEK version)."""
    return _seal(dek, data, _field_aad(table, record_uuid, field, dek_version))


def open_bytes(
    dek: bytes, *, table: str, record_uuid: str, field: str, dek_version: int, blob: bytes
) -> bytes:
    """Decrypt raw bytes; any defect raises IntegrityError."""
    if not blob:
        raise IntegrityError("empty ciphertext")
    return _open(dek, bytes(blob), _field_aad(table, record_uuid, field, dek_version))


def seal_field(
    dek: bytes, *, table: str, record_uuid: str, field: str, dek_version: int, value: str
) -> str:
    """Encrypt one text field value (empty strings too) into base64 text."""
    if not isinstance(value, str):
        raise TypeError("only text values are sealed")
    blob = seal_bytes(dek, table=table, record_uuid=record_uuid, field=field,
                      dek_version=dek_version, data=value.encode("utf-8"))
    return base64.b64encode(blob).decode("ascii")


def open_field(
    dek: bytes, *, table: str, record_uuid: str, field: str, dek_version: int, token: str
) -> Secret:
    """Decrypt one text field; any defect raises IntegrityError, never returns a guess."""
    if not isinstance(token, str) or not token:
        raise IntegrityError("empty ciphertext")
    try:
        blob = base64.b64decode(token.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise IntegrityError("ciphertext is not base64") from None
    plaintext = open_bytes(dek, table=table, record_uuid=record_uuid, field=field,
                           dek_version=dek_version, blob=blob)
    try:
        return Secret(plaintext.decode("utf-8"))
    except UnicodeDecodeError:  # authenticated yet not UTF-8: only a broken writer does this
        raise IntegrityError("decrypted value is not UTF-8") from None


def index_bits_for(expected_population: int) -> int:
    """Bits kept in a blind index for ``expected_population`` people (issue 16): the most
    such that a tenth of that population still shares each value in use with at least one
    other person on average (rule 8): 12 bits for 100,000 people, 2.7 people per value in use
    at 10,000 and 24.4 at 100,000 (``tests/shared/test_blind_index_width.py`` measures it)."""
    smallest = max(1, expected_population) / POPULATION_RATIO
    bits = 1
    while _people_per_value_in_use(smallest, bits + 1) >= MIN_PEOPLE_PER_VALUE:
        bits += 1
    return bits


def _people_per_value_in_use(people: float, bits: int) -> float:
    lam = people / 2**bits
    return lam / -math.expm1(-lam)


DEFAULT_INDEX_BITS = index_bits_for(DEFAULT_EXPECTED_POPULATION)


def blind_index(secret: bytes, label: str, normalised: str, bits: int = BLIND_INDEX_BITS) -> int:
    """Truncated HMAC-SHA256 of a normalised value: a bucket, not an identifier."""
    digest = hmac.new(secret, _encode_parts(_INDEX_LABEL, label, normalised), hashlib.sha256)
    return int.from_bytes(digest.digest()[:4], "big") >> (32 - bits)


# Letters NFKD does not decompose into a base letter and an accent.
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss", "ł": "l",
                            "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "þ": "th",
                            "Þ": "TH", "ı": "i"})


def normalise_name(value: str) -> str:
    """NFKD, accents stripped, upper case, letters only (rule 8); other scripts are kept."""
    decomposed = unicodedata.normalize("NFKD", value.translate(_LIGATURES))
    return "".join(c for c in decomposed if c.isalpha() and not unicodedata.combining(c)).upper()


def normalise_digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit() and c.isascii())


def mac(secret: bytes, *parts: str | int) -> str:
    """Hex HMAC-SHA256 over the canonical encoding of ``parts`` (audit chain, job payloads)."""
    return hmac.new(secret, _encode_parts(*parts), hashlib.sha256).hexdigest()


def mac_matches(secret: bytes, expected: str, *parts: str | int) -> bool:
    return hmac.compare_digest(mac(secret, *parts), expected)


def _stamp(path: Path) -> tuple[int, int, int]:
    """What tells a changed keyring file (it is replaced whole, never edited in place)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyringError(f"keyring file not found: {path}") from None
    return info.st_ino, info.st_mtime_ns, info.st_size


def _stamp_mode(path: Path) -> int:
    try:
        return path.stat().st_mode
    except FileNotFoundError:
        raise KeyringError(f"keyring file not found: {path}") from None


@contextlib.contextmanager
def _editing(path: Path):
    """Read-modify-write of the keyring file under an exclusive lock; the new file replaces
    the old atomically (readers see one or the other, never a mix)."""
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KeyringError(f"keyring {path} is unreadable ({type(exc).__name__})") from None
        if data.get("format") != KEYRING_FORMAT:
            raise KeyringError(f"keyring {path}: unknown format")
        try:
            yield data
        except KeyError as exc:
            raise KeyringError(f"keyring {path} has no such chain") from exc
        write_private(path, json.dumps(data, indent=2) + "\n", exclusive=False)
    finally:
        os.close(fd)


def fingerprint(key: bytes) -> str:
    """A public identifier of a key (never the key): 16 hex digits of its SHA-256."""
    return hashlib.sha256(b"icli.fingerprint.v1" + key).hexdigest()[:16]


def fingerprint_matches(key: bytes, expected: str) -> bool:
    """Constant-time comparison of a key's fingerprint with a recorded one."""
    return hmac.compare_digest(fingerprint(key), expected)


@dataclass(frozen=True)
class KeyVersion:
    chain: str
    version: int
    key: bytes
    created_at: str

    def __repr__(self) -> str:
        return f"KeyVersion({self.chain!r}, {self.version}, fp={fingerprint(self.key)})"


class KeyRing:
    """Versioned keys per chain, loaded from a keyring file (the file provider).

    ``wrap``/``unwrap`` are the provider interface: a KMS or Vault Transit adapter can
    replace this class without touching callers.

    ``check`` sees every set of versions before this ring holds it (at load and at each
    reload) and raises to refuse it: ``shared.keys`` compares them with the database.
    """

    def __init__(self, versions: Iterable[KeyVersion], primaries: dict[str, int]) -> None:
        # One attribute swapped whole by refresh(): a reader never sees half a reload.
        self._state = ({(v.chain, v.version): v for v in versions}, dict(primaries))
        self._source: tuple[Path, frozenset[str], tuple[int, int, int]] | None = None
        self._check: Callable[[list[KeyVersion]], None] | None = None

    def __repr__(self) -> str:
        return f"KeyRing(chains={sorted(self._primaries)})"

    @property
    def _keys(self) -> dict[tuple[str, int], KeyVersion]:
        return self._state[0]

    @property
    def _primaries(self) -> dict[str, int]:
        return self._state[1]

    # -- loading -------------------------------------------------------------
    @classmethod
    def load(cls, path: Path, chains: Iterable[str] = ALL_CHAINS,
             check: Callable[[list[KeyVersion]], None] | None = None) -> KeyRing:
        """Load the requested chains only; refuse a file others can read."""
        wanted = frozenset(chains)
        stamp = _stamp(path)
        versions, primaries = cls._read(path, wanted)
        if check is not None:
            check(versions)
        ring = cls(versions, primaries)
        ring._source = (path, wanted, stamp)
        ring._check = check
        return ring

    def refresh(self) -> bool:
        """Reload the file this ring came from if it changed (a version added, promoted or
        retired): running processes follow the keyring without a restart. True if reloaded;
        a file that became unreadable, or that ``check`` refuses, leaves the ring as it was
        and raises."""
        if self._source is None:
            return False
        path, wanted, stamp = self._source
        current = _stamp(path)
        if current == stamp:
            return False
        versions, primaries = self._read(path, wanted)
        if self._check is not None:
            self._check(versions)
        self._state = ({(v.chain, v.version): v for v in versions}, primaries)
        self._source = (path, wanted, current)
        return True

    @staticmethod
    def _read(path: Path, wanted: frozenset[str]) -> tuple[list[KeyVersion], dict[str, int]]:
        mode = _stamp_mode(path)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyringError(f"keyring file {path} is readable by others: chmod 600 it")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != KEYRING_FORMAT:
                raise KeyringError(f"keyring {path}: unknown format")
            versions, primaries = [], {}
            for chain, entry in data["chains"].items():
                if chain not in wanted:
                    continue
                primaries[chain] = int(entry["primary"])
                for number, item in entry["versions"].items():
                    key = base64.b64decode(item["key"], validate=True)
                    if len(key) != KEY_BYTES:
                        raise KeyringError(f"keyring {path}: bad key length in {chain}")
                    versions.append(KeyVersion(chain, int(number), key, item["created_at"]))
        except (AttributeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise KeyringError(f"keyring {path} is unreadable ({type(exc).__name__})") from None
        missing = wanted - set(primaries)
        if missing:
            raise KeyringError(f"keyring {path} lacks chain(s): {', '.join(sorted(missing))}")
        held = {(v.chain, v.version) for v in versions}
        for chain, version in primaries.items():
            if (chain, version) not in held:
                raise KeyringError(f"keyring {path}: {chain} primary v{version} is missing")
        return versions, primaries

    @classmethod
    def create_file(cls, path: Path) -> bool:
        """Write a new keyring with version 1 of every chain; False if one already exists."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        chains = {
            chain: {
                "primary": 1,
                "versions": {
                    "1": {"key": base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode(),
                          "created_at": now}
                },
            }
            for chain in ALL_CHAINS
        }
        body = json.dumps({"format": KEYRING_FORMAT, "chains": chains}, indent=2)
        return write_private(path, body + "\n", exclusive=True)

    @staticmethod
    def export_chains(source: Path, destination: Path, chains: Iterable[str], *,
                      replace: bool = False) -> bool:
        """Copy some chains of a keyring into a new file (the worker's: no identity chain)."""
        wanted = set(chains)
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
            missing = wanted - set(data["chains"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyringError(f"keyring {source} is unreadable ({type(exc).__name__})") from None
        if missing:
            raise KeyringError(f"keyring {source} lacks chain(s): {', '.join(sorted(missing))}")
        data["chains"] = {name: data["chains"][name] for name in sorted(wanted)}
        return write_private(destination, json.dumps(data, indent=2) + "\n",
                             exclusive=not replace)

    # -- editing the file (icli keys add / promote / retire) -----------------
    @staticmethod
    def add_version(path: Path, chain: str) -> int:
        """A new random version of ``chain``, held but not used (not primary)."""
        with _editing(path) as data:
            versions = data["chains"][chain]["versions"]
            number = max(int(n) for n in versions) + 1
            versions[str(number)] = {
                "key": base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode(),
                "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
        return number

    @staticmethod
    def set_primary(path: Path, chain: str, version: int) -> None:
        with _editing(path) as data:
            if str(version) not in data["chains"][chain]["versions"]:
                raise KeyringError(f"{chain} v{version} is not in the keyring")
            data["chains"][chain]["primary"] = version

    @staticmethod
    def remove_version(path: Path, chain: str, version: int) -> bool:
        """Delete the material of a retired version; False if the file no longer has it."""
        with _editing(path) as data:
            entry = data["chains"][chain]
            if entry["primary"] == version:
                raise KeyringError(f"{chain} v{version} is primary: it cannot be removed")
            return entry["versions"].pop(str(version), None) is not None

    # -- queries -------------------------------------------------------------
    @property
    def chains(self) -> tuple[str, ...]:
        return tuple(sorted(self._primaries))

    def holds(self, chain: str, version: int) -> bool:
        return (chain, version) in self._keys

    def versions(self, chain: str) -> list[KeyVersion]:
        return sorted((v for v in self._keys.values() if v.chain == chain),
                      key=lambda v: v.version)

    def primary_version(self, chain: str) -> int:
        try:
            return self._primaries[chain]
        except KeyError:
            raise KeyNotFoundError(f"this process does not hold the {chain} chain") from None

    def key(self, chain: str, version: int) -> bytes:
        try:
            return self._keys[(chain, version)].key
        except KeyError:
            raise KeyNotFoundError(f"this process does not hold {chain} key v{version}") from None

    def secret(self, chain: str) -> bytes:
        """The primary key of a secret chain (index, audit, jobs)."""
        if chain not in SECRET_CHAINS:
            raise KeyNotFoundError(f"{chain} is not a secret chain")
        return self.key(chain, self.primary_version(chain))

    # -- provider interface --------------------------------------------------
    def wrap(self, chain: str, record_uuid: str, dek_version: int, dek: bytes) -> tuple[int, bytes]:
        """Wrap a DEK under the chain's primary KEK; returns (kek_version, wrapped bytes)."""
        if chain not in DATA_CHAINS:
            raise KeyNotFoundError(f"{chain} does not wrap data keys")
        kek_version = self.primary_version(chain)
        aad = _wrap_aad(record_uuid, chain, dek_version, kek_version)
        return kek_version, _seal(self.key(chain, kek_version), dek, aad)

    def unwrap(
        self, chain: str, record_uuid: str, dek_version: int, kek_version: int, wrapped: bytes
    ) -> bytes:
        """Unwrap a DEK; the AAD ties it to its record, chain and versions."""
        aad = _wrap_aad(record_uuid, chain, dek_version, kek_version)
        return _checked_dek(_open(self.key(chain, kek_version), bytes(wrapped), aad))

    def rewrap_many(self, chain: str, kek_version: int,
                    keys: Sequence[tuple[str, int, bytes]]) -> tuple[int, list[bytes]]:
        """Rewrap many DEKs of ``chain`` from ``kek_version`` to the primary version (the
        rotation's loop: one AES-GCM context per KEK, nonces drawn at once). ``keys`` are
        (record uuid, DEK version, wrapped DEK); returns (primary version, rewrapped DEKs in
        the same order). Any defect raises IntegrityError: nothing is half done."""
        if chain not in DATA_CHAINS:
            raise KeyNotFoundError(f"{chain} does not wrap data keys")
        target = self.primary_version(chain)
        opener = AESGCM(self.key(chain, kek_version))
        sealer = AESGCM(self.key(chain, target))
        old_tail, new_tail = _encode_parts(kek_version), _encode_parts(target)
        nonces = os.urandom(NONCE_BYTES * len(keys))
        rewrapped = []
        for index, (record_uuid, dek_version, wrapped) in enumerate(keys):
            stem = _wrap_aad_stem(record_uuid, chain, dek_version)
            dek = _checked_dek(_open_with(opener, bytes(wrapped), stem + old_tail))
            nonce = nonces[index * NONCE_BYTES : (index + 1) * NONCE_BYTES]
            rewrapped.append(_seal_with(sealer, dek, stem + new_tail, nonce))
        return target, rewrapped


def _checked_dek(dek: bytes) -> bytes:
    if len(dek) != KEY_BYTES:
        raise IntegrityError("unwrapped data key has a wrong length")
    return dek
