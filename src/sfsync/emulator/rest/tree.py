"""``POST /composite/tree/{Obj}``: create record trees (parents with nested children).

Body: ``{"records": [{"attributes": {"type", "referenceId"}, <fields>, "<ChildRel>":
{"records": [...]}}]}``. Each record is inserted after its parent, with the child's lookup
(the relationship's field) set to the new parent id. At most 200 records, 5 object types and
5 levels. All or nothing: the whole tree is one store transaction.

Success: 201 ``{"hasErrors": false, "results": [{"referenceId", "id"}, ...]}`` in insertion
order (parents before their children; the 201 status is UNCONFIRMED). A record that fails:
400 ``{"hasErrors": true, "results": [{"referenceId", "errors": [{"statusCode", "message",
"fields"}]}]}`` and nothing is saved. A malformed tree (missing or duplicate referenceId, a
type that does not match the URL or relationship, an unknown relationship, too many records)
is 400 with the usual error array, code INVALID_INPUT (UNCONFIRMED).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sfsync.emulator.errors import ApiError
from sfsync.emulator.rest.common import (
    guarded,
    json_body,
    json_bytes_response,
    json_object,
    object_def,
    org_of,
    user_id_of,
)
from sfsync.emulator.rest.seams import Org
from sfsync.emulator.schema.model import ObjectDef

MAX_RECORDS = 200
MAX_TYPES = 5
MAX_DEPTH = 5


@dataclass
class Node:
    """One record of the tree, with the lookup field that ties it to its parent."""

    reference_id: str
    obj: ObjectDef
    values: dict[str, Any]
    parent_field: str | None = None
    children: list[Node] = field(default_factory=list)


def _invalid(message: str) -> ApiError:
    return ApiError.of(400, "INVALID_INPUT", message)


def parse_tree(org: Org, root: ObjectDef, body: dict[str, Any]) -> list[Node]:
    """The tree in ``body`` checked against the schema and the limits."""
    seen: set[str] = set()
    types: set[str] = set()

    def parse(
        records: Any, expected: ObjectDef, parent_field: str | None, depth: int
    ) -> list[Node]:
        if depth > MAX_DEPTH:
            raise _invalid(f"The tree is deeper than {MAX_DEPTH} levels")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise _invalid("records must be an array of JSON objects")
        nodes = []
        for record in records:
            attributes = record.get("attributes")
            if not isinstance(attributes, dict):
                raise _invalid("Each record needs attributes with type and referenceId")
            ref = attributes.get("referenceId")
            if not isinstance(ref, str) or not ref:
                raise _invalid("Each record needs attributes.referenceId")
            if ref in seen:
                raise _invalid(f"Duplicate ReferenceId provided in the request: {ref}")
            seen.add(ref)
            type_name = attributes.get("type")
            if not isinstance(type_name, str) or type_name.lower() != expected.name.lower():
                raise _invalid(f"{ref}: attributes.type must be {expected.name}, found {type_name}")
            types.add(expected.name)
            node = Node(ref, expected, {}, parent_field)
            for key, value in record.items():
                if key == "attributes":
                    continue
                rel = expected.child_relationship(key)
                if rel is not None and isinstance(value, dict) and "records" in value:
                    child_obj = org.schema.object(rel.child_object)
                    if child_obj is None:
                        raise _invalid(f"{ref}: unknown child relationship {key}")
                    node.children.extend(parse(value["records"], child_obj, rel.field, depth + 1))
                elif isinstance(value, dict):
                    raise _invalid(f"{ref}: {key} is not a child relationship of {expected.name}")
                else:
                    node.values[key] = value
            nodes.append(node)
        return nodes

    nodes = parse(body.get("records"), root, None, 1)
    if len(seen) > MAX_RECORDS:
        raise _invalid(f"The tree has more than {MAX_RECORDS} records")
    if len(types) > MAX_TYPES:
        raise _invalid(f"The tree has more than {MAX_TYPES} object types")
    return nodes


class TreeFailedError(Exception):
    """A record of the tree failed: carries its referenceId and the store's error."""

    def __init__(self, reference_id: str, error: ApiError) -> None:
        super().__init__(reference_id)
        self.reference_id = reference_id
        self.error = error


@guarded
async def create_tree(request: Request) -> Response:
    org = org_of(request)
    root = object_def(org, request.path_params["sobject"])
    nodes = parse_tree(org, root, json_object(await json_body(request)))
    user = user_id_of(request)
    results: list[dict[str, Any]] = []

    def insert(node: Node, parent_id: str | None) -> None:
        values = dict(node.values)
        if node.parent_field is not None and parent_id is not None:
            values[node.parent_field] = parent_id
        try:
            new_id = org.store.insert(node.obj.name, values, user_id=user)
        except ApiError as error:
            raise TreeFailedError(node.reference_id, error) from error
        results.append({"referenceId": node.reference_id, "id": new_id})
        for child in node.children:
            insert(child, new_id)

    failure: TreeFailedError | None = None
    try:
        with org.store.transaction():
            try:
                for node in nodes:
                    insert(node, None)
            except TreeFailedError as exc:
                failure = exc
                raise exc.error from exc  # ApiError: the store rolls the tree back
    except ApiError:
        if failure is None:
            raise
    if failure is not None:
        return json_bytes_response(
            {
                "hasErrors": True,
                "results": [
                    {
                        "referenceId": failure.reference_id,
                        "errors": [d.dml() for d in failure.error.details],
                    }
                ],
            },
            400,
        )
    return json_bytes_response({"hasErrors": False, "results": results}, 201)
