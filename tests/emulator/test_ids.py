"""Record ids: checksum vectors from the reference, case rules, the factory."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfsync.emulator.ids import (
    ID_ALPHABET,
    IdFactory,
    custom_key_prefix,
    decode_base62,
    encode_base62,
    is_valid_id,
    normalise,
    to_18,
)

VECTORS = [
    ("a0RE000000IJmcN", "a0RE000000IJmcNMAT"),
    ("001M000000qfPyS", "001M000000qfPySIAU"),
    ("a01M00000062mPg", "a01M00000062mPgIAI"),
    ("aaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaAAA"),
    ("AbCdEfGhIjKlMnO", "AbCdEfGhIjKlMnOVKV"),
    ("aBcDEfgHIJKLMNO", "aBcDEfgHIJKLMNO025"),
    ("001D000000IRFma", "001D000000IRFmaIAH"),
    ("00190000001pPvH", "00190000001pPvHAAU"),
]

ids15 = st.text(alphabet=ID_ALPHABET, min_size=15, max_size=15)


@pytest.mark.parametrize(("id15", "id18"), VECTORS)
def test_reference_vectors(id15: str, id18: str) -> None:
    assert to_18(id15) == id18
    assert normalise(id15) == id18
    assert normalise(id18) == id18


@pytest.mark.parametrize(("id15", "id18"), VECTORS)
def test_18_char_ids_are_case_insensitive(id15: str, id18: str) -> None:
    assert normalise(id18.lower()) == id18
    assert normalise(id18.upper()) == id18


@given(ids15)
def test_normalise_recovers_casing_of_any_id(id15: str) -> None:
    id18 = to_18(id15)
    assert id18[:15] == id15
    assert normalise(id18.swapcase()) == id18


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "001",
        "001M000000qfPy",
        "001M000000qfPyS!",
        "001M000000qfPySIA",
        "001M000000qfPyS-AU",
        "001M000000qfPyS999",
        "0010000000qfPyS111",
    ],
)
def test_malformed_ids_are_rejected(bad: str) -> None:
    assert not is_valid_id(bad)
    with pytest.raises(ValueError, match="Salesforce id"):
        normalise(bad)


def test_is_valid_id_rejects_non_strings() -> None:
    assert not is_valid_id(None)
    assert not is_valid_id(1234)
    assert is_valid_id("001M000000qfPyS")


def test_checksum_that_marks_a_digit_upper_case_is_invalid() -> None:
    # 'B' = bit 0 set: says the first character of the chunk is upper case, but it is '0'.
    assert not is_valid_id("001M000000qfPySBAU")


@given(st.integers(min_value=0, max_value=62**9 - 1))
def test_base62_round_trip_and_order(n: int) -> None:
    text = encode_base62(n, 9)
    assert len(text) == 9
    assert decode_base62(text) == n
    if n > 0:
        assert encode_base62(n - 1, 9) < text


def test_factory_mints_unique_ordered_ids_per_prefix() -> None:
    factory = IdFactory("xx")
    first = factory.new_id("001")
    assert first == to_18("001xx0000000001")
    batch = factory.new_ids("001", 100)
    assert batch == sorted(batch)
    assert first < batch[0]
    assert factory.new_id("003").startswith("003xx0000000001")
    assert all(is_valid_id(i) and normalise(i) == i for i in batch)


def test_factory_is_thread_safe() -> None:
    factory = IdFactory()
    minted: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [factory.new_id("001") for _ in range(500)]
        with lock:
            minted.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(minted)) == 2000


def test_factory_observe_moves_counter_past_existing_ids() -> None:
    factory = IdFactory("xx")
    factory.observe(to_18("001xx00000000Zz"))
    factory.observe(to_18("001M000000qfPyS"))  # another org: ignored
    assert factory.new_id("001") == to_18("001xx00000000a0")


def test_factory_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="org_instance"):
        IdFactory("x")
    with pytest.raises(ValueError, match="key prefix"):
        IdFactory().new_id("01")


def test_custom_key_prefixes() -> None:
    assert custom_key_prefix(0) == "a00"
    assert custom_key_prefix(33) == "a0X"
    assert custom_key_prefix(62) == "a10"
    assert custom_key_prefix(1, first="e") == "e01"


@given(st.integers(min_value=1, max_value=62**9 - 9000), st.integers(min_value=1, max_value=8000))
def test_batch_minting_matches_the_checksum_definition(start: int, count: int) -> None:
    factory = IdFactory("Xy")
    factory.observe(to_18("001Xy0" + encode_base62(start - 1, 9)))
    batch = factory.new_ids("001", count)
    assert len(batch) == count
    assert batch == [to_18("001Xy0" + encode_base62(start + i, 9)) for i in range(count)]
