"""shared/crypto.py: known answers, tamper detection, clean failures, Secret, blind indexes.

The known answers come from tests/shared/data/kat.json (made by tests/shared/make_kat.py with
TEST-ONLY keys). They are decrypted and recomputed here, so any change to the ciphertext
format, the associated data or the keyed hashes fails these tests.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import pickle
import traceback
from pathlib import Path
from unittest import mock

import pytest

from shared import crypto
from shared.crypto import (
    BLIND_INDEX_BITS,
    IntegrityError,
    KeyNotFoundError,
    KeyRing,
    KeyVersion,
    Secret,
    blind_index,
    mac,
    mac_matches,
    normalise_name,
    open_bytes,
    open_field,
    seal_bytes,
    seal_field,
)

KAT_PATH = Path(__file__).resolve().parent / "data" / "kat.json"
KAT = json.loads(KAT_PATH.read_text(encoding="utf-8"))

DEK = bytes.fromhex(KAT["keys"]["test_only_dek_hex"])
KEK = base64.b64decode(KAT["keys"]["test_only_kek_base64"])
INDEX_SECRET = bytes.fromhex(KAT["keys"]["test_only_index_secret_hex"])
MAC_SECRET = bytes.fromhex(KAT["keys"]["test_only_mac_secret_hex"])
WRAP = KAT["wrapped_dek"]
WRAPPED = base64.b64decode(WRAP["wrapped_base64"])
WRAPPED_DEK = bytes.fromhex(WRAP["test_only_dek_hex"])

# The non-ASCII fixture is the victim of the tamper tests: its plaintext must never leak.
VICTIM = next(f for f in KAT["fields"] if f["plaintext"] == "Éloïse Ñandú 🙂")
VICTIM_BLOB = base64.b64decode(VICTIM["token"])


def field_kwargs(entry: dict, **overrides) -> dict:
    kwargs = {k: entry[k] for k in ("table", "record_uuid", "field", "dek_version")}
    kwargs.update(overrides)
    return kwargs


def open_victim(token: str, **overrides) -> Secret:
    return open_field(DEK, token=token, **field_kwargs(VICTIM, **overrides))


def flipped(data: bytes, position: int, mask: int) -> bytes:
    out = bytearray(data)
    out[position] ^= mask
    return bytes(out)


def derived_key(label: str) -> bytes:
    return hashlib.sha256(f"test-only {label}".encode()).digest()




def kat_ring(**extra_versions: int) -> KeyRing:
    """The KAT identity KEK; ``extra_versions`` adds chains/versions holding the SAME key, so
    that only the associated data can tell them apart."""
    versions = [KeyVersion(WRAP["chain"], WRAP["kek_version"], KEK, WRAP["kek_created_at"])]
    for name, version in extra_versions.items():
        versions.append(KeyVersion(name, version, KEK, WRAP["kek_created_at"]))
    return KeyRing(versions, {WRAP["chain"]: WRAP["kek_version"]})


def unwrap_kat(ring: KeyRing, wrapped: bytes = WRAPPED, **overrides) -> bytes:
    args = {"chain": WRAP["chain"], "record_uuid": WRAP["record_uuid"],
            "dek_version": WRAP["dek_version"], "kek_version": WRAP["kek_version"]}
    args.update(overrides)
    return ring.unwrap(args["chain"], args["record_uuid"], args["dek_version"],
                       args["kek_version"], wrapped)


def assert_clean(exc: BaseException, *secrets: str) -> None:
    """Neither the message, the repr nor the printed traceback carries a secret value."""
    # no chained exception either (a UnicodeDecodeError would hold the decrypted bytes)
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__
    printed = "".join(traceback.format_exception(exc))
    for secret in secrets:
        for text in (str(exc), repr(exc), printed):
            assert secret not in text


# -- known answers -----------------------------------------------------------------------


def test_the_fixture_file_declares_the_current_format_and_algorithm():
    assert KAT["format_version"] == crypto.FORMAT_VERSION == 1
    assert KAT["algorithm"] == crypto.ALG_AES256GCM == 1
    assert {f["plaintext"] for f in KAT["fields"]} >= {"", "Éloïse Ñandú 🙂"}


@pytest.mark.parametrize("entry", KAT["fields"], ids=lambda e: e["field"])
def test_every_committed_field_token_decrypts_to_its_committed_plaintext(entry):
    secret = open_field(DEK, token=entry["token"], **field_kwargs(entry))
    assert isinstance(secret, Secret)
    assert secret.reveal() == entry["plaintext"]


@pytest.mark.parametrize("entry", KAT["fields"], ids=lambda e: e["field"])
def test_every_committed_token_has_the_documented_layout(entry):
    blob = base64.b64decode(entry["token"], validate=True)
    assert blob[0] == crypto.FORMAT_VERSION
    assert blob[1] == crypto.ALG_AES256GCM
    plaintext = entry["plaintext"].encode("utf-8")
    assert len(blob) == (crypto.HEADER_BYTES + crypto.NONCE_BYTES + len(plaintext)
                         + crypto.TAG_BYTES)


@pytest.mark.parametrize("entry", KAT["fields"], ids=lambda e: e["field"])
def test_resealing_with_the_recorded_nonce_gives_the_committed_token(entry):
    nonce = base64.b64decode(entry["token"])[2:14]
    with mock.patch.object(crypto.os, "urandom", return_value=nonce) as urandom:
        token = seal_field(DEK, value=entry["plaintext"], **field_kwargs(entry))
    urandom.assert_called_once_with(crypto.NONCE_BYTES)
    assert token == entry["token"]


def test_the_committed_wrapped_dek_unwraps_to_the_committed_dek():
    assert unwrap_kat(kat_ring()) == WRAPPED_DEK


def test_rewrapping_with_the_recorded_nonce_gives_the_committed_wrapped_dek():
    with mock.patch.object(crypto.os, "urandom", return_value=WRAPPED[2:14]):
        kek_version, wrapped = kat_ring().wrap(WRAP["chain"], WRAP["record_uuid"],
                                               WRAP["dek_version"], WRAPPED_DEK)
    assert kek_version == WRAP["kek_version"]
    assert wrapped == WRAPPED


def test_the_committed_blind_index_is_recomputed_from_the_normalised_name():
    entry = KAT["blind_index"]
    assert entry["bits"] == BLIND_INDEX_BITS
    assert normalise_name(entry["input"]) == entry["normalised"]
    assert blind_index(INDEX_SECRET, entry["label"], entry["normalised"]) == entry["value"]


def test_the_committed_mac_is_recomputed_and_matches():
    parts = KAT["mac"]["parts"]
    assert mac(MAC_SECRET, *parts) == KAT["mac"]["value"]
    assert mac_matches(MAC_SECRET, KAT["mac"]["value"], *parts)
    assert not mac_matches(MAC_SECRET, KAT["mac"]["value"], *parts[:-1], parts[-1] + "x")


def test_the_generator_script_still_reproduces_the_committed_file():
    from tests.shared import make_kat

    assert make_kat.render() == KAT_PATH.read_text(encoding="utf-8")


def test_a_fresh_seal_round_trips_and_never_repeats_a_nonce():
    dek = crypto.new_dek()
    tokens = {seal_field(dek, table="t", record_uuid="u", field="f", dek_version=1,
                         value="même valeur") for _ in range(20)}
    assert len(tokens) == 20
    for token in tokens:
        assert open_field(dek, table="t", record_uuid="u", field="f", dek_version=1,
                          token=token).reveal() == "même valeur"


# -- tampering: a ciphertext only opens where it was sealed --------------------------------


@pytest.mark.parametrize("overrides", [
    {"record_uuid": "00000000-0000-4000-8000-00000000c0df"},
    {"field": "nom"},
    {"table": "sheets"},
    {"dek_version": 2},
    {"dek_version": 0},
], ids=["other-record", "other-field", "other-table", "other-dek-version", "dek-version-0"])
def test_a_field_token_moved_to_another_place_raises_integrity_error(overrides):
    assert open_victim(VICTIM["token"]).reveal() == VICTIM["plaintext"]  # in place: fine
    with pytest.raises(IntegrityError) as info:
        open_victim(VICTIM["token"], **overrides)
    assert_clean(info.value, VICTIM["plaintext"])


def test_a_field_token_opened_with_another_dek_raises_integrity_error():
    with pytest.raises(IntegrityError):
        open_field(derived_key("other dek"), token=VICTIM["token"], **field_kwargs(VICTIM))


def test_flipping_any_bit_pattern_at_every_byte_of_a_sealed_field_raises_integrity_error():
    assert len(VICTIM_BLOB) > 40
    failures = 0
    for position in range(len(VICTIM_BLOB)):
        for mask in (0x01, 0x80, 0xFF):
            token = base64.b64encode(flipped(VICTIM_BLOB, position, mask)).decode()
            with pytest.raises(IntegrityError) as info:
                open_victim(token)
            assert_clean(info.value, VICTIM["plaintext"])
            failures += 1
    assert failures == 3 * len(VICTIM_BLOB)


def test_flipping_every_byte_of_a_wrapped_dek_raises_integrity_error():
    ring = kat_ring()
    for position in range(len(WRAPPED)):
        for mask in (0x01, 0x80, 0xFF):
            with pytest.raises(IntegrityError) as info:
                unwrap_kat(ring, flipped(WRAPPED, position, mask))
            assert_clean(info.value, WRAPPED_DEK.hex(), KEK.hex())


@pytest.mark.parametrize("overrides", [
    {"record_uuid": "00000000-0000-4000-8000-0000000beef0"},
    {"chain": "content"},
    {"dek_version": 1},
    {"kek_version": 4},
], ids=["other-record", "other-chain", "other-dek-version", "other-kek-version"])
def test_unwrapping_a_dek_in_another_place_raises_integrity_error(overrides):
    # content v3 and identity v4 hold the very same key: only the AAD differs.
    ring = kat_ring(content=3, identity=4)
    assert unwrap_kat(ring) == WRAPPED_DEK
    with pytest.raises(IntegrityError) as info:
        unwrap_kat(ring, **overrides)
    assert_clean(info.value, WRAPPED_DEK.hex())


def test_unwrapping_with_an_unknown_kek_version_raises_key_not_found():
    with pytest.raises(KeyNotFoundError):
        unwrap_kat(kat_ring(), kek_version=99)
    with pytest.raises(KeyNotFoundError):
        unwrap_kat(kat_ring(), chain="content")


def test_wrapping_refuses_a_secret_chain_and_an_absent_chain():
    ring = KeyRing([KeyVersion("index", 1, derived_key("index"), "2026-01-01")], {"index": 1})
    with pytest.raises(KeyNotFoundError):
        ring.wrap("index", "u", 1, crypto.new_dek())
    with pytest.raises(KeyNotFoundError):
        ring.wrap("identity", "u", 1, crypto.new_dek())


def test_a_wrapped_value_of_the_wrong_length_is_refused_after_authentication():
    ring = kat_ring()
    _, wrapped = ring.wrap(WRAP["chain"], WRAP["record_uuid"], WRAP["dek_version"], b"k" * 16)
    with pytest.raises(IntegrityError, match="length"):
        unwrap_kat(ring, wrapped)


def rotated_kat_ring() -> KeyRing:
    """The KAT ring with a newer primary version of the identity chain."""
    ring = kat_ring()
    newer = KeyVersion(WRAP["chain"], WRAP["kek_version"] + 1, derived_key("newer"), "2026-11-25")
    return KeyRing([*ring.versions(WRAP["chain"]), newer], {WRAP["chain"]: newer.version})


def test_rewrapping_many_keys_moves_each_to_the_primary_bound_to_its_own_place():
    ring = rotated_kat_ring()
    # the committed key, then fresh keys of other records under the old version
    deks = {WRAP["record_uuid"]: WRAPPED_DEK}
    keys = [(WRAP["record_uuid"], WRAP["dek_version"], WRAPPED)]
    old_only = kat_ring()
    for number in range(3):
        owner, dek = f"owner-{number}", crypto.new_dek()
        deks[owner] = dek
        keys.append((owner, 2, old_only.wrap(WRAP["chain"], owner, 2, dek)[1]))
    version, rewrapped = ring.rewrap_many(WRAP["chain"], WRAP["kek_version"], keys)
    assert version == WRAP["kek_version"] + 1
    for (owner, dek_version, old), new in zip(keys, rewrapped, strict=True):
        assert new != old
        assert ring.unwrap(WRAP["chain"], owner, dek_version, version, new) == deks[owner]
        with pytest.raises(IntegrityError):  # bound to its record and versions
            ring.unwrap(WRAP["chain"], "another", dek_version, version, new)
        with pytest.raises(IntegrityError):
            ring.unwrap(WRAP["chain"], owner, dek_version, WRAP["kek_version"], new)
    assert len({new[2:14] for new in rewrapped}) == len(rewrapped)  # one nonce each


def test_rewrapping_many_keys_refuses_the_whole_batch_on_one_defect():
    ring = rotated_kat_ring()
    keys = [(WRAP["record_uuid"], WRAP["dek_version"], WRAPPED),
            (WRAP["record_uuid"], WRAP["dek_version"], flipped(WRAPPED, 20, 1))]
    with pytest.raises(IntegrityError) as info:
        ring.rewrap_many(WRAP["chain"], WRAP["kek_version"], keys)
    assert_clean(info.value, WRAPPED_DEK.hex())
    with pytest.raises(KeyNotFoundError):
        ring.rewrap_many("index", 1, keys)


def with_header(blob: bytes, version: int, algorithm: int) -> bytes:
    return bytes((version, algorithm)) + blob[2:]


MALFORMED_TOKENS = {
    "truncated-tag": base64.b64encode(VICTIM_BLOB[:-1]).decode(),
    "truncated-to-header": base64.b64encode(VICTIM_BLOB[:2]).decode(),
    "truncated-below-minimum": base64.b64encode(VICTIM_BLOB[:29]).decode(),
    "truncated-base64": VICTIM["token"][:-2],
    "empty": "",
    "not-base64": "%%%",
    "base64-with-spaces": VICTIM["token"][:8] + " " + VICTIM["token"][8:],
    "non-ascii": "AQÉ" + VICTIM["token"][3:],
    "format-version-0": base64.b64encode(with_header(VICTIM_BLOB, 0, 1)).decode(),
    "format-version-2": base64.b64encode(with_header(VICTIM_BLOB, 2, 1)).decode(),
    "algorithm-0": base64.b64encode(with_header(VICTIM_BLOB, 1, 0)).decode(),
    "algorithm-2": base64.b64encode(with_header(VICTIM_BLOB, 1, 2)).decode(),
    "extra-byte": base64.b64encode(VICTIM_BLOB + b"\x00").decode(),
}


@pytest.mark.parametrize("token", MALFORMED_TOKENS.values(), ids=MALFORMED_TOKENS.keys())
def test_a_malformed_field_token_raises_a_clean_integrity_error(token):
    with pytest.raises(IntegrityError) as info:
        open_victim(token)
    assert_clean(info.value, VICTIM["plaintext"], DEK.hex())


@pytest.mark.parametrize("token", [None, VICTIM_BLOB, 42], ids=["none", "bytes", "int"])
def test_a_field_token_that_is_not_text_raises_integrity_error(token):
    with pytest.raises(IntegrityError):
        open_victim(token)


@pytest.mark.parametrize("blob", [
    b"", VICTIM_BLOB[:29], WRAPPED[:-1], with_header(WRAPPED, 2, 1), with_header(WRAPPED, 1, 2),
], ids=["empty", "short", "truncated", "format-2", "algorithm-2"])
def test_a_malformed_wrapped_dek_raises_a_clean_integrity_error(blob):
    with pytest.raises(IntegrityError) as info:
        unwrap_kat(kat_ring(), blob)
    assert_clean(info.value, WRAPPED_DEK.hex())


def test_an_empty_blob_raises_integrity_error_from_open_bytes():
    with pytest.raises(IntegrityError):
        open_bytes(DEK, blob=b"", **field_kwargs(VICTIM))


def test_authenticated_bytes_that_are_not_utf8_raise_without_carrying_them():
    marker = "canary-not-utf8-payload"
    blob = seal_bytes(DEK, data=b"\xff\xfe" + marker.encode(), **field_kwargs(VICTIM))
    token = base64.b64encode(blob).decode()
    with pytest.raises(IntegrityError, match="UTF-8") as info:
        open_victim(token)
    assert_clean(info.value, marker)


def test_sealing_refuses_a_value_that_is_not_text():
    with pytest.raises(TypeError):
        seal_field(DEK, value=b"bytes", **field_kwargs(VICTIM))


# -- Secret ------------------------------------------------------------------------------


def test_a_secret_hides_its_value_from_str_repr_format_and_html():
    value = "Qwertinette-secret-42"
    secret = Secret(value)
    shown = [str(secret), repr(secret), f"{secret}", f"{secret!r}", format(secret, ""),
             secret.__html__(), str([secret]), repr({"k": secret})]
    for text in shown:
        assert value not in text
    assert secret.reveal() == value


def test_a_secret_is_truthy_only_when_its_value_is_not_empty():
    assert Secret("x")
    assert not Secret("")


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_a_secret_raises_at_every_protocol(protocol):
    with pytest.raises(TypeError):
        pickle.dumps(Secret("Zyxcanari"), protocol=protocol)
    with pytest.raises(TypeError):
        pickle.dumps({"nested": [Secret("Zyxcanari")]}, protocol=protocol)


def test_copying_or_json_encoding_a_secret_raises():
    with pytest.raises(TypeError):
        copy.copy(Secret("Zyxcanari"))
    with pytest.raises(TypeError):
        copy.deepcopy(Secret("Zyxcanari"))
    with pytest.raises(TypeError):
        json.dumps({"nom": Secret("Zyxcanari")})


# -- blind index -------------------------------------------------------------------------

NAMES = [f"Nomfictif{chr(65 + i % 26)}{chr(65 + i // 26 % 26)}{chr(65 + i // 676)}"
         for i in range(2000)]


@pytest.mark.parametrize("typed", [
    "Élodie-Marie", "ELODIE MARIE", "élodie marie", "  Elodie -  Marie ", "ÉLODIE-MARIE",
    "Elodie\u2011Marie", "E\u0301lodie Marie", "elodie_marie", "Elodie'Marie",
])
def test_name_normalisation_ignores_accents_case_hyphens_and_spaces(typed):
    assert normalise_name(typed) == "ELODIEMARIE"
    assert (blind_index(INDEX_SECRET, "name_birth", normalise_name(typed))
            == blind_index(INDEX_SECRET, "name_birth", normalise_name("Élodie-Marie")))


def test_name_normalisation_keeps_different_letters_apart():
    assert normalise_name("Elodie-Marie") != normalise_name("Elodie-Maria")
    assert normalise_name("Ñandú") == "NANDU"


def test_every_blind_index_value_lies_within_its_bit_range_and_uses_it():
    values = [blind_index(INDEX_SECRET, "name_birth", name) for name in NAMES]
    assert all(0 <= v <= 2**BLIND_INDEX_BITS - 1 for v in values)
    assert all(isinstance(v, int) for v in values)
    # not squeezed into fewer bits, not constant
    assert max(values) >= 2 ** (BLIND_INDEX_BITS - 1)
    assert len(set(values)) > len(NAMES) * 0.8


@pytest.mark.parametrize("bits", [1, 8, 14, 20])
def test_a_blind_index_with_explicit_bits_stays_within_them(bits):
    values = {blind_index(INDEX_SECRET, "caf", name, bits=bits) for name in NAMES[:300]}
    assert values <= set(range(2**bits))
    assert max(values) >= 2 ** (bits - 1)


def test_a_different_label_almost_always_gives_a_different_bucket():
    same = sum(blind_index(INDEX_SECRET, "name_birth", n) == blind_index(INDEX_SECRET, "caf", n)
               for n in NAMES)
    assert same <= 5  # expected ~0.12 of 2000 at 14 bits


def test_a_different_secret_almost_always_gives_a_different_bucket():
    other = derived_key("other index secret")
    same = sum(blind_index(INDEX_SECRET, "name_birth", n) == blind_index(other, "name_birth", n)
               for n in NAMES)
    assert same <= 5


def test_label_and_value_cannot_be_shifted_into_each_other():
    # length-prefixed parts: ("ab", "c") and ("a", "bc") are distinct inputs
    assert mac(MAC_SECRET, "ab", "c") != mac(MAC_SECRET, "a", "bc")
    assert (blind_index(INDEX_SECRET, "name", "XBIRTH", bits=32)
            != blind_index(INDEX_SECRET, "nameX", "BIRTH", bits=32))


# -- key metadata never shows a key --------------------------------------------------------


def test_key_versions_and_rings_never_show_their_keys():
    key = derived_key("shown?")
    version = KeyVersion("identity", 1, key, "2026-01-01")
    ring = KeyRing([version], {"identity": 1})
    for text in (repr(version), str(version), repr(ring), str(ring)):
        assert key.hex() not in text
        assert base64.b64encode(key).decode() not in text
    assert crypto.fingerprint(key) in repr(version)


@pytest.mark.parametrize(("typed", "same_as"), [
    ("Lœtitia", "LOETITIA"),
    ("Straße", "STRASSE"),
    ("Łukasz", "LUKASZ"),
    ("Bjørn", "BJORN"),
])
def test_letters_without_decomposition_are_spelled_out(typed, same_as):
    assert normalise_name(typed) == same_as


def test_names_in_other_scripts_are_kept_not_emptied():
    assert normalise_name("Иванова") == "ИВАНОВА"
    assert normalise_name("王 芳") == "王芳"
