"""What the sink needs to know of one object, read once from its describe.

Which fields can be written, which are external ids (an upsert key), and which are references
to other objects: the sink orders parents before children and groups rows by parent with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sfsync.connectors.salesforce.records import parse_reference
from sfsync.core.errors import ConfigError

# Lookups that never make a parent worth ordering or grouping by: every record has them and
# they point at users, whose rows the platform does not lock for a child's DML.
_IGNORED_PARENTS = frozenset({"User", "Group", "RecordType", "Profile", "UserRole"})


@dataclass(frozen=True, slots=True)
class ReferenceField:
    """A lookup or master-detail field.

    Attributes:
        name: the field (``AccountId``, ``Account__c``).
        relationship: its relationship name (``Account``, ``Account__r``), if any.
        targets: the objects it may point to.
        master_detail: a master-detail (child rows lock the master on every write).
    """

    name: str
    relationship: str | None
    targets: tuple[str, ...]
    master_detail: bool


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object as the sink sees it.

    Attributes:
        name: the object's API name as describe spells it.
        writable: every field that can be created or updated (lower case -> declared name).
        external_ids: external id fields (lower case -> declared name): upsert keys.
        references: every lookup and master-detail field.
    """

    name: str
    writable: Mapping[str, str]
    external_ids: Mapping[str, str]
    references: tuple[ReferenceField, ...]
    _names: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)
    _locks: dict[str, tuple[str, str] | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    _lock_plans: dict[tuple[str, ...], tuple[tuple[str, str, str], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def from_describe(cls, describe: Mapping[str, Any]) -> ObjectInfo:
        """Build from ``GET /sobjects/{Object}/describe``."""
        writable: dict[str, str] = {}
        external: dict[str, str] = {}
        refs: list[ReferenceField] = []
        for f in describe.get("fields", []):
            name = str(f["name"])
            if f.get("createable") or f.get("updateable"):
                writable[name.lower()] = name
            if f.get("externalId"):
                external[name.lower()] = name
            targets = tuple(str(t) for t in f.get("referenceTo") or ())
            if f.get("type") == "reference" and targets:
                refs.append(
                    ReferenceField(
                        name=name,
                        relationship=f.get("relationshipName"),
                        targets=targets,
                        master_detail=f.get("relationshipOrder") is not None
                        or (f.get("cascadeDelete") is True and not f.get("nillable", True)),
                    )
                )
        return cls(str(describe["name"]), writable, external, tuple(refs))

    @property
    def parents(self) -> frozenset[str]:
        """Objects this one references (itself included when it has a self-lookup), users and
        other system objects left out."""
        return frozenset(t for r in self.lock_fields() for t in r.targets)

    def lookup_fields(self) -> dict[str, str]:
        """Relationship name (lower case) -> lookup field name."""
        return {r.relationship.lower(): r.name for r in self.references if r.relationship}

    def key_field(self, key: str) -> str:
        """The declared name of the configured key: ``Id`` or an external id field.

        Raises:
            ConfigError: ``key`` is neither (the hint names the object's external ids).
        """
        if key.lower() == "id":
            return "Id"
        declared = self.external_ids.get(key.lower())
        if declared is None:
            known = ", ".join(sorted(self.external_ids.values())) or "none"
            raise ConfigError(
                f"{self.name}.{key} is not an external id field, so it cannot be the key "
                "rows are upserted by",
                hint=f"use key: Id, or one of {self.name}'s external id fields ({known}); "
                "mark the field External ID in Salesforce to upsert by it",
            )
        return declared

    def writable_name(self, name: str) -> str | None:
        """The declared name of a writable field, or of a parent reference whose
        relationship exists (``Account.Ext_Id__c``); ``None`` if Salesforce would refuse it."""
        if name in self._names:
            return self._names[name]
        ref = parse_reference(name)
        found: str | None = None
        if ref is None:
            found = self.writable.get(name.lower())
        elif any(
            r.relationship and r.relationship.lower() == ref.relationship.lower()
            for r in self.references
        ):
            found = name
        self._names[name] = found
        return found

    def lock_parent(self, name: str) -> tuple[str, str] | None:
        """For a field a row sets, the parent it locks: ``(object, key field)`` (``Id`` for a
        lookup field, the parent's external id field in lower case for a reference), or
        ``None`` if the field touches no lockable parent."""
        if name in self._locks:
            return self._locks[name]
        ref = parse_reference(name)
        found: tuple[str, str] | None = None
        for r in self.lock_fields():
            if ref is None:
                if name.lower() == r.name.lower():
                    found = (r.targets[0], "Id")
                    break
            elif r.relationship and ref.relationship.lower() == r.relationship.lower():
                found = (ref.parent_type or r.targets[0], ref.field.lower())
                break
        self._locks[name] = found
        return found

    def lock_plan(self, names: tuple[str, ...]) -> tuple[tuple[str, str, str], ...]:
        """For a row setting ``names``: ``(name, parent object, key field)`` of each name that
        locks a parent (:meth:`lock_parent`); cached, rows mostly share their field names."""
        plan = self._lock_plans.get(names)
        if plan is None:
            plan = tuple(
                (name, *parent) for name in names if (parent := self.lock_parent(name)) is not None
            )
            self._lock_plans[names] = plan
        return plan

    def lock_fields(self) -> tuple[ReferenceField, ...]:
        """References whose parent rows a child's write locks: all but those to users and
        other system objects (every record has an owner; grouping by it would serialise all)."""
        return tuple(r for r in self.references if not set(r.targets) <= _IGNORED_PARENTS)
