"""``POST /composite`` and ``POST /composite/batch`` (section 2.9).

Composite runs up to 25 subrequests in order. A later subrequest refers to an earlier one's
result as ``@{referenceId.path}`` in its URL or body, where the path walks the earlier body
(``@{newAccount.id}``, ``@{q.records[0].Id}``). The answer is always HTTP 200
``{"compositeResponse": [{"body", "httpHeaders", "httpStatusCode", "referenceId"}]}``.

- ``allOrNone: true``: the subrequests share one store transaction; when one fails (status >=
  400) the transaction is rolled back, the failed one keeps its own response and every other
  one answers 400 PROCESSING_HALTED ("The transaction was rolled back since another operation
  in the same transaction failed.").
- Without it, a subrequest that refers to a failed (or unknown) one answers 400
  PROCESSING_HALTED naming the reference (code confirmed, wording UNCONFIRMED); the others run.
- ``collateSubrequests`` only lets Salesforce regroup independent subrequests for speed; the
  emulator always runs them in order, which is a valid collation.

Batch runs up to 25 independent subrequests (``url`` relative to ``/services/data/``, body in
``richInput``) and answers ``{"hasErrors", "results": [{"statusCode", "result"}]}``; with
``haltOnError`` every subrequest after the first failure answers 412 with
BATCH_PROCESSING_HALTED (shape UNCONFIRMED).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sfsync.emulator.errors import ApiError
from sfsync.emulator.rest.common import guarded, json_body, json_bytes_response, json_object, org_of
from sfsync.emulator.rest.dispatch import Dispatcher, SubResponse

MAX_SUBREQUESTS = 25

_REFERENCE = re.compile(r"@\{([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+|\[\d+\])+)\}")
_STEP = re.compile(r"\.([A-Za-z0-9_]+)|\[(\d+)\]")
_REFERENCE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_ROLLED_BACK = (
    "The transaction was rolled back since another operation in the same transaction failed."
)


class UnresolvedReferenceError(Exception):
    """A ``@{ref.path}`` that names no successful earlier subrequest or no value in it."""

    def __init__(self, expression: str, reference: str) -> None:
        super().__init__(expression)
        self.expression = expression
        self.reference = reference


def _walk(value: Any, path: str) -> Any:
    for key, index in _STEP.findall(path):
        if key:
            if not isinstance(value, dict):
                raise KeyError(key)
            # Salesforce resolves keys case-sensitively except that "id" finds "Id" too.
            if key in value:
                value = value[key]
            else:
                matches = [k for k in value if k.lower() == key.lower()]
                if not matches:
                    raise KeyError(key)
                value = value[matches[0]]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                raise KeyError(index)
            value = value[int(index)]
    return value


def substitute(value: Any, results: dict[str, Any]) -> Any:
    """``value`` with every ``@{ref.path}`` replaced from ``results`` (referenceId -> body).

    A string that is exactly one reference takes the referenced value with its JSON type;
    references inside longer strings are replaced by their text.
    """
    if isinstance(value, dict):
        return {k: substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, results) for v in value]
    if not isinstance(value, str) or "@{" not in value:
        return value

    def resolve(match: re.Match[str]) -> Any:
        reference, path = match.group(1), match.group(2)
        if reference not in results:
            raise UnresolvedReferenceError(match.group(0), reference)
        try:
            return _walk(results[reference], path)
        except KeyError as exc:
            raise UnresolvedReferenceError(match.group(0), reference) from exc

    whole = _REFERENCE.fullmatch(value)
    if whole is not None:
        return resolve(whole)
    return _REFERENCE.sub(lambda m: str(resolve(m)), value)


def _halted(message: str) -> list[dict[str, Any]]:
    return [{"errorCode": "PROCESSING_HALTED", "message": message}]


def _entry(reference_id: str, sub: SubResponse) -> dict[str, Any]:
    headers = {}
    for wire, name in (
        ("location", "Location"),
        ("etag", "ETag"),
        ("last-modified", "Last-Modified"),
    ):
        if wire in sub.headers:
            headers[name] = sub.headers[wire]
    return {
        "body": sub.body,
        "httpHeaders": headers,
        "httpStatusCode": sub.status,
        "referenceId": reference_id,
    }


def _subrequests(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = body.get(key)
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise ApiError.of(400, "JSON_PARSER_ERROR", f"{key} must be a non-empty array of objects")
    if len(items) > MAX_SUBREQUESTS:
        raise ApiError.of(
            400,
            "LIMIT_EXCEEDED",
            f"Limit Exceeded: the maximum number of subrequests is {MAX_SUBREQUESTS}",
        )
    for item in items:
        if not isinstance(item.get("method"), str) or not isinstance(item.get("url"), str):
            raise ApiError.of(400, "JSON_PARSER_ERROR", "Each subrequest needs a method and a url")
    return items


class CompositeResource:
    """``/composite`` and ``/composite/batch``, dispatching through ``dispatcher``."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    @guarded
    async def composite(self, request: Request) -> Response:
        body = json_object(await json_body(request))
        items = _subrequests(body, "compositeRequest")
        seen: set[str] = set()
        for item in items:
            ref = item.get("referenceId")
            if not isinstance(ref, str) or not _REFERENCE_ID.match(ref) or ref in seen:
                raise ApiError.of(
                    400,
                    "INVALID_INPUT",
                    f"Invalid or duplicate referenceId: {ref}. A referenceId must start with a "
                    "letter or underscore, contain only letters, digits and underscores, and be "
                    "unique within the request.",
                )
            seen.add(ref)
        if body.get("allOrNone") is True:
            entries = await self._all_or_none(request, items)
        else:
            entries = await self._each(request, items)
        return json_bytes_response({"compositeResponse": entries})

    async def _run_one(
        self, request: Request, item: dict[str, Any], results: dict[str, Any]
    ) -> dict[str, Any]:
        reference_id = item["referenceId"]
        try:
            url = substitute(item["url"], results)
            sub_body = substitute(item.get("body"), results)
        except UnresolvedReferenceError as exc:
            message = (
                f"Invalid reference specified. No value for {exc.expression} found in "
                f"{exc.reference}. Provided referenceId ('{exc.reference}') refers to a "
                "subrequest that failed or was not processed."
            )
            return {
                "body": _halted(message),
                "httpHeaders": {},
                "httpStatusCode": 400,
                "referenceId": reference_id,
            }
        headers = item.get("httpHeaders")
        sub = await self._dispatcher.call(
            request,
            item["method"],
            str(url),
            sub_body,
            {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else None,
        )
        if sub.status < 400:
            results[reference_id] = sub.body
        return _entry(reference_id, sub)

    async def _each(self, request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results: dict[str, Any] = {}
        return [await self._run_one(request, item, results) for item in items]

    async def _all_or_none(
        self, request: Request, items: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        store = org_of(request).store
        results: dict[str, Any] = {}
        entries: list[dict[str, Any]] = []
        failed_at: int | None = None
        try:
            with store.transaction():
                for index, item in enumerate(items):
                    entry = await self._run_one(request, item, results)
                    entries.append(entry)
                    if entry["httpStatusCode"] >= 400:
                        failed_at = index
                        # Raising ApiError is how the store is told to roll back.
                        raise ApiError.of(400, "PROCESSING_HALTED", _ROLLED_BACK)
        except ApiError:
            if failed_at is None:
                raise
        if failed_at is None:
            return entries
        halted = []
        for index, item in enumerate(items):
            if index == failed_at:
                halted.append(entries[index])
            else:
                halted.append(
                    {
                        "body": _halted(_ROLLED_BACK),
                        "httpHeaders": {},
                        "httpStatusCode": 400,
                        "referenceId": item["referenceId"],
                    }
                )
        return halted

    @guarded
    async def batch(self, request: Request) -> Response:
        body = json_object(await json_body(request))
        items = _subrequests(body, "batchRequests")
        halt = body.get("haltOnError") is True
        results: list[dict[str, Any]] = []
        has_errors = False
        for item in items:
            if halt and has_errors:
                results.append(
                    {
                        "statusCode": 412,
                        "result": [
                            {
                                "errorCode": "BATCH_PROCESSING_HALTED",
                                "message": "Batch processing halted per request",
                            }
                        ],
                    }
                )
                continue
            url = item["url"].lstrip("/")
            if not url.startswith("services/data/"):
                url = "services/data/" + url
            sub = await self._dispatcher.call(
                request, item["method"], "/" + url, item.get("richInput")
            )
            has_errors = has_errors or sub.status >= 400
            results.append({"statusCode": sub.status, "result": sub.body})
        return json_bytes_response({"hasErrors": has_errors, "results": results})
