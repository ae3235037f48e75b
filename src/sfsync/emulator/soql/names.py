"""Name resolution: objects, fields and relationship paths, looked up case-insensitively.

A path such as ``Account.Owner.Name`` becomes the lookups to follow (``AccountId``,
``OwnerId``, declared casing) and the field to read, plus the hops taken, which rendering
needs to nest parent objects. A leading alias (``a.Name`` with ``FROM Account a``) or the
queried object's own name (``Account.Name`` on Account) is dropped first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from sfsync.emulator.schema.model import FieldDef, ObjectDef, Schema

from . import ast as a
from . import plan as p
from .messages import no_such_column, not_queryable, unknown_object, unknown_relationship

#: The object being queried and its alias, if any.
Scope: TypeAlias = tuple[ObjectDef, str | None]


@dataclass(frozen=True, slots=True)
class Resolved:
    """A resolved path plus what rendering needs: the relationship hops taken."""

    path: p.Path
    hops: tuple[tuple[FieldDef, ObjectDef], ...]
    owner: ObjectDef  # the object the final field belongs to


class NameResolver:
    """Resolves names against one schema."""

    def __init__(self, schema: Schema) -> None:
        self._schema = schema

    def _object(self, name: str, pos: a.Pos) -> ObjectDef:
        obj = self._schema.object(name)
        if obj is None:
            raise unknown_object(pos, name)
        if not obj.queryable:
            raise not_queryable(pos, obj.name)
        return obj

    def resolve(self, ref: a.FieldRef, scope: Scope) -> Resolved:
        obj, alias = scope
        parts = list(ref.path)
        if (len(parts) > 1 and alias is not None and parts[0].lower() == alias.lower()) or (
            len(parts) > 1
            and parts[0].lower() == obj.name.lower()
            and obj.relationship(parts[0]) is None
        ):
            parts = parts[1:]
        hops: list[tuple[FieldDef, ObjectDef]] = []
        current = obj
        for index, segment in enumerate(parts[:-1]):
            lookup = current.relationship(segment)
            if lookup is None:
                raise unknown_relationship(ref.pos, segment)
            current = self._target(lookup, parts[index + 1], ref.pos, segment)
            hops.append((lookup, current))
        found = current.field(parts[-1])
        if found is None:
            raise no_such_column(ref.pos, parts[-1], current.name)
        path = p.Path(tuple(lookup.name for lookup, _ in hops), found)
        return Resolved(path, tuple(hops), current)

    def _target(self, lookup: FieldDef, next_name: str, pos: a.Pos, segment: str) -> ObjectDef:
        """The object a lookup leads to; for polymorphic lookups, the first target that has
        the next name (Salesforce limits those paths to fields common to the targets)."""
        targets = [t for t in (self._schema.object(n) for n in lookup.reference_to) if t]
        if not targets:
            raise unknown_relationship(pos, segment)
        for target in targets:
            if target.field(next_name) is not None or target.relationship(next_name):
                return target
        return targets[0]

    def _prefixes(self, lookup: FieldDef) -> tuple[tuple[str, str], ...]:
        if len(lookup.reference_to) < 2:
            return ()
        found = (self._schema.object(name) for name in lookup.reference_to)
        return tuple((t.key_prefix, t.name) for t in found if t is not None)
