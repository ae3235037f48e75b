"""Records to REST JSON: closures built once per run from a :class:`~.plan.RenderNode`.

Output shape (section 2.10 of the wire reference): every record starts with
``"attributes": {"type": T, "url": "/services/data/v<api>/sobjects/T/<Id>"}``, then the
selected fields in SELECT order, each present (``null`` when empty). A parent relationship
is an object with its own attributes, or ``null`` when the lookup is empty; a child
subquery is ``{"totalSize": n, "done": true, "records": [...]}``, or ``null`` when there
are no children. Compound fields render as an object of their components (``null`` when
all components are empty).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import islice

from . import plan as p
from .catalog import Record, RecordSource
from .predicates import PredicateBuilder, sort_records

Rendered = dict[str, object]
Renderer = Callable[[Record], Rendered]
_Writer = Callable[[Record, Rendered], None]


class RenderBuilder:
    """Builds renderers for one run (one source, one API version, one ``now``)."""

    def __init__(
        self, source: RecordSource, predicates: PredicateBuilder, api_version: str,
        *, include_deleted: bool,
    ) -> None:  # fmt: skip
        self.source = source
        self.predicates = predicates
        self.base = f"/services/data/v{api_version}/sobjects/"
        self.include_deleted = include_deleted

    def renderer(self, node: p.RenderNode) -> Renderer:
        """A function rendering one record of ``node``'s object."""
        url = f"{self.base}{node.type_name}/"
        type_name = node.type_name
        if node.by_prefix:
            return self._polymorphic(node)
        if all(
            isinstance(e, p.FieldEntry) and e.key == e.field and not e.labels for e in node.entries
        ):
            # The bulk path: plain fields only. Records of the store share one field->slot map
            # per object, so each field's position is looked up once and the values are read
            # by index (three times faster than a get per field); any other mapping takes one
            # get per field.
            names = tuple(e.key for e in node.entries)
            # The last slot map seen and its (name, position) pairs; the map is held, so the
            # identity test stays meaningful.
            cached: list[object] = [None, None]

            def positions(slot: Mapping[str, int]) -> tuple[tuple[str, int], ...] | None:
                if any(name not in slot for name in names):
                    return None
                return tuple((name, slot[name]) for name in names)

            def plain(record: Record) -> Rendered:
                out: Rendered = {"attributes": {"type": type_name, "url": url + str(record["Id"])}}
                slot = getattr(record, "slot_map", None)
                if slot is not None:
                    if slot is not cached[0]:
                        cached[0], cached[1] = slot, positions(slot)
                    pairs = cached[1]
                    if pairs is not None:
                        values = record.value_tuple  # type: ignore[attr-defined]
                        for name, index in pairs:  # type: ignore[attr-defined]
                            out[name] = values[index]
                        return out
                get = record.get
                for name in names:
                    out[name] = get(name)
                return out

            return plain
        writers = [self._writer(entry) for entry in node.entries]

        def general(record: Record) -> Rendered:
            out: Rendered = {"attributes": {"type": type_name, "url": url + str(record["Id"])}}
            for write in writers:
                write(record, out)
            return out

        return general

    def _polymorphic(self, node: p.RenderNode) -> Renderer:
        """A parent reached through a polymorphic lookup: the type comes from the id prefix."""
        by_type = {
            name: self.renderer(p.RenderNode(name, node.entries)) for _, name in node.by_prefix
        }
        by_prefix = {prefix: by_type[name] for prefix, name in node.by_prefix}
        fallback = self.renderer(p.RenderNode(node.type_name, node.entries))

        def render(record: Record) -> Rendered:
            return by_prefix.get(str(record["Id"])[:3], fallback)(record)

        return render

    def _writer(self, entry: p.Entry) -> _Writer:
        if isinstance(entry, p.FieldEntry) and entry.labels:
            key, name, labels = entry.key, entry.field, dict(entry.labels)

            def labelled(record: Record, out: Rendered) -> None:
                value = record.get(name)
                out[key] = labels.get(value, value) if isinstance(value, str) else value

            return labelled
        if isinstance(entry, p.FieldEntry):
            key, name = entry.key, entry.field

            def field(record: Record, out: Rendered) -> None:
                out[key] = record.get(name)

            return field
        if isinstance(entry, p.CompoundEntry):
            return self._compound(entry)
        if isinstance(entry, p.ParentEntry):
            return self._parent(entry)
        if isinstance(entry, p.TypeofEntry):
            return self._typeof(entry)
        return self._children(entry)

    def _typeof(self, entry: p.TypeofEntry) -> _Writer:
        key, lookup = entry.key, entry.lookup
        by_prefix = {prefix: self.renderer(node) for prefix, node in entry.nodes}
        fallback = self.renderer(entry.fallback) if entry.fallback is not None else None
        types = dict(entry.types)
        base = self.base
        get = self.source.get

        def typed(record: Record, out: Rendered) -> None:
            ref = record.get(lookup)
            target = get(ref) if isinstance(ref, str) else None
            if target is None:
                out[key] = None
                return
            assert isinstance(ref, str)
            render = by_prefix.get(ref[:3], fallback)
            if render is not None:
                out[key] = render(target)
            else:  # no branch for this type and no ELSE: only the record's attributes
                name = types.get(ref[:3], "Name")
                out[key] = {"attributes": {"type": name, "url": f"{base}{name}/{ref}"}}

        return typed

    @staticmethod
    def _compound(entry: p.CompoundEntry) -> _Writer:
        key, parts = entry.key, entry.parts

        def compound(record: Record, out: Rendered) -> None:
            values = {json_key: record.get(name) for json_key, name in parts}
            empty = all(v is None for v in values.values())
            out[key] = None if empty else values

        return compound

    def _parent(self, entry: p.ParentEntry) -> _Writer:
        key, lookup = entry.key, entry.lookup
        render = self.renderer(entry.node)
        get = self.source.get

        def parent(record: Record, out: Rendered) -> None:
            ref = record.get(lookup)
            target = get(ref) if isinstance(ref, str) else None
            out[key] = None if target is None else render(target)

        return parent

    def _children(self, entry: p.ChildEntry) -> _Writer:
        key, plan = entry.key, entry.plan
        render = self.renderer(plan.node)
        where = self.predicates.build(plan.where) if plan.where is not None else None
        children = self.source.children
        include_deleted = self.include_deleted
        start = plan.offset or 0
        stop = None if plan.limit is None else start + plan.limit
        source = self.source

        def child_rows(record: Record, out: Rendered) -> None:
            rows = children(
                plan.object_name, plan.lookup, str(record["Id"]), include_deleted=include_deleted
            )
            matching = [r for r in rows if where is None or where(r)]
            if plan.order:
                sort_records(matching, plan.order, source)
            selected = list(islice(matching, start, stop))
            out[key] = (
                {"totalSize": len(selected), "done": True, "records": [render(r) for r in selected]}
                if selected
                else None
            )

        return child_rows
