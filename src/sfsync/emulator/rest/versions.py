"""API versions the emulator serves, and the two version resources.

``GET /services/data/`` lists every supported version (oldest first) with its release label;
``GET /services/data/vXX.X/`` maps resource names to their paths. Only versions 45.0 to 66.0
are routed: the URL convertor below matches exactly those, so any other version falls through
to the app's not-found/retired handling.
"""

from __future__ import annotations

from typing import ClassVar

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response

from sfsync.emulator.org import MAX_API_VERSION, MIN_API_VERSION, api_versions
from sfsync.emulator.rest.common import guarded, json_bytes_response

MIN_VERSION = MIN_API_VERSION
MAX_VERSION = MAX_API_VERSION

SUPPORTED_VERSIONS: tuple[str, ...] = tuple(f"{v}.0" for v in range(MIN_VERSION, MAX_VERSION + 1))


class ApiVersionConvertor(Convertor[str]):
    """Path convertor ``{version:sfapiversion}``: ``v59.0`` in the URL, ``"59.0"`` in code."""

    regex: ClassVar[str] = (
        "v(?:" + "|".join(str(v) for v in range(MIN_VERSION, MAX_VERSION + 1)) + r")\.0"
    )

    def convert(self, value: str) -> str:
        return value[1:]

    def to_string(self, value: str) -> str:
        return "v" + value


register_url_convertor("sfapiversion", ApiVersionConvertor())


def version_list() -> list[dict[str, str]]:
    """The body of ``GET /services/data/``: oldest to newest (the org's version table)."""
    return api_versions()


_RESOURCES = (
    "tooling",
    "metadata",
    "eclair",
    "folders",
    "prechatForms",
    "contact-tracing",
    "async-queries",
    "query",
    "jsonxform",
    "serviceTemplates",
    "recent",
    "search",
    "sobjects",
    "actions",
    "support",
    "tabs",
    "quickActions",
    "queryAll",
    "analytics",
    "parameterizedSearch",
    "composite",
    "limits",
    "process",
    "theme",
    "appMenu",
)


def resource_map(version: str) -> dict[str, str]:
    """The body of ``GET /services/data/vXX.X/``."""
    return {name: f"/services/data/v{version}/{name}" for name in _RESOURCES}


@guarded
async def list_versions(request: Request) -> Response:
    """``GET /services/data/`` (served without a version in the path)."""
    return json_bytes_response(version_list())


@guarded
async def list_resources(request: Request) -> Response:
    """``GET /services/data/vXX.X/``."""
    return json_bytes_response(resource_map(request.path_params["version"]))
