"""The sealing primitives of crypto-shredding (shared/sealing.py)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import sealing

PATHS = (("display_name",), ("notify", "address"), ("linkedin_member_urn",))


def test_take_seal_open_splice_gives_the_data_back() -> None:
    data = {
        "employee_id": "emp-1",
        "display_name": "Søren Ærø",
        "notify": {"channel": "email", "address": "s@example.com"},
        "linkedin_member_urn": "urn:li:person:abc",
        "ambassador": True,
    }
    original = copy.deepcopy(data)
    kid, key = sealing.new_key()
    sealed = sealing.seal(kid, key, sealing.take(data, PATHS))
    assert data == {"employee_id": "emp-1", "notify": {"channel": "email"}, "ambassador": True}
    assert "Søren" not in str(sealed)
    assert "example.com" not in str(sealed)
    assert sealing.splice(data, sealing.open_sealed(key, sealed)) == original


def test_absent_and_null_fields_are_not_sealed() -> None:
    data = {"employee_id": "emp-1", "display_name": "A", "linkedin_member_urn": None}
    assert sealing.take(data, PATHS) == {"display_name": "A"}
    assert data == {"employee_id": "emp-1", "linkedin_member_urn": None}


def test_the_wrong_key_another_kid_or_a_changed_byte_does_not_open() -> None:
    kid, key = sealing.new_key()
    other_kid, other_key = sealing.new_key()
    sealed = sealing.seal(kid, key, {"display_name": "A"})
    with pytest.raises(sealing.SealError, match="does not open"):
        sealing.open_sealed(other_key, sealed)
    with pytest.raises(sealing.SealError, match="does not open"):
        sealing.open_sealed(key, {**sealed, "kid": other_kid})
    flipped = sealed["ct"][:-2] + ("A" if sealed["ct"][-2] != "A" else "B") + sealed["ct"][-1]
    with pytest.raises(sealing.SealError):
        sealing.open_sealed(key, {**sealed, "ct": flipped})
    for bad in ({}, {"kid": "x"}, {**sealed, "alg": "none"}, {**sealed, "iv": "!!"}):
        with pytest.raises(sealing.SealError):
            sealing.open_sealed(key, bad)


def test_key_ids_are_random_and_recognised() -> None:
    kids = {sealing.new_key()[0] for _ in range(100)}
    assert len(kids) == 100
    assert all(sealing.is_kid(k) for k in kids)
    assert not sealing.is_kid("k_" + "g" * 32)
    assert not sealing.is_kid("apl_" + "0" * 32)


@given(st.dictionaries(st.text(min_size=1), st.text() | st.integers(), max_size=5))
def test_any_object_round_trips(fields: dict[str, object]) -> None:
    kid, key = sealing.new_key()
    assert sealing.open_sealed(key, sealing.seal(kid, key, fields)) == fields
