from __future__ import annotations

import pytest

from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec, diff_schemas, is_widening


def _f(name: str, kind: FieldKind, **kw: int) -> FieldSpec:
    return FieldSpec(name=name, kind=kind, **kw)


def _schema(*fields: FieldSpec) -> EntitySchema:
    return EntitySchema.of("Account", "Id", [_f("Id", FieldKind.ID), *fields])


def test_order_and_lookup() -> None:
    schema = _schema(_f("Name", FieldKind.STRING, length=255), _f("Rev", FieldKind.FLOAT))
    assert schema.names() == ("Id", "Name", "Rev")
    assert [f.name for f in schema] == ["Id", "Name", "Rev"]


def test_key_and_version_must_exist() -> None:
    with pytest.raises(ValueError, match="key field"):
        EntitySchema.of("A", "Id", [_f("Name", FieldKind.STRING)])
    with pytest.raises(ValueError, match="version field"):
        EntitySchema.of("A", "Id", [_f("Id", FieldKind.ID)], version_field="SystemModstamp")


def test_diff_finds_added_removed_and_retyped() -> None:
    old = _schema(_f("Name", FieldKind.STRING, length=80), _f("Gone", FieldKind.BOOLEAN))
    new = _schema(_f("Name", FieldKind.STRING, length=255), _f("New", FieldKind.DATE))
    change = diff_schemas(old, new)
    assert [f.name for f in change.added] == ["New"]
    assert [f.name for f in change.removed] == ["Gone"]
    assert [(a.length, b.length) for a, b in change.retyped] == [(80, 255)]
    assert not change.empty
    assert diff_schemas(old, old).empty


@pytest.mark.parametrize(
    ("old", "new", "widening"),
    [
        (_f("x", FieldKind.STRING, length=80), _f("x", FieldKind.STRING, length=255), True),
        (_f("x", FieldKind.STRING, length=255), _f("x", FieldKind.STRING, length=80), False),
        (_f("x", FieldKind.STRING, length=80), _f("x", FieldKind.STRING, length=0), True),
        (_f("x", FieldKind.STRING, length=0), _f("x", FieldKind.STRING, length=80), False),
        (_f("x", FieldKind.STRING, length=80), _f("x", FieldKind.TEXT), True),
        (_f("x", FieldKind.TEXT), _f("x", FieldKind.STRING, length=80), False),
        (_f("x", FieldKind.INTEGER), _f("x", FieldKind.DECIMAL, precision=18), True),
        (
            _f("x", FieldKind.DECIMAL, precision=10, scale=2),
            _f("x", FieldKind.DECIMAL, precision=18, scale=2),
            True,
        ),
        (
            _f("x", FieldKind.DECIMAL, precision=18, scale=2),
            _f("x", FieldKind.DECIMAL, precision=18, scale=4),
            False,
        ),
        (_f("x", FieldKind.DATE), _f("x", FieldKind.DATETIME), True),
        (_f("x", FieldKind.DATETIME), _f("x", FieldKind.DATE), False),
        (_f("x", FieldKind.BOOLEAN), _f("x", FieldKind.STRING, length=5), False),
        (_f("x", FieldKind.FLOAT), _f("x", FieldKind.INTEGER), False),
    ],
)
def test_widening_table(old: FieldSpec, new: FieldSpec, widening: bool) -> None:
    assert is_widening(old, new) is widening
