"""SOQL error messages in Salesforce's shape.

Salesforce prefixes most query errors with the offending line, a caret under the offending
token and ``ERROR at Row:R:Column:C`` (1-based), then the reason::

    \\nSELECT Id, Nme FROM Account\\n           ^\\nERROR at Row:1:Column:12\\nNo such column ...

Real Salesforce sometimes shows only a window of a long line; we always show the whole
line (the clients we know of parse ``errorCode``, never the excerpt), a documented choice.
"""

from __future__ import annotations

from sfsync.emulator.errors import ApiError

from .ast import Pos

MALFORMED_QUERY = "MALFORMED_QUERY"
INVALID_FIELD = "INVALID_FIELD"
INVALID_TYPE = "INVALID_TYPE"
NUMBER_OUTSIDE_VALID_RANGE = "NUMBER_OUTSIDE_VALID_RANGE"
INVALID_QUERY_FILTER_OPERATOR = "INVALID_QUERY_FILTER_OPERATOR"

_WSDL_HINT = "Please reference your WSDL or the describe call for the appropriate names."


class SoqlSyntaxError(Exception):
    """Raised inside the parser and binder, where the query text is not at hand; converted
    to an :class:`ApiError` with the caret excerpt by :func:`to_api_error`."""

    def __init__(self, code: str, pos: Pos, reason: str, *, excerpt: bool = True) -> None:
        super().__init__(reason)
        self.code = code
        self.pos = pos
        self.reason = reason
        self.excerpt = excerpt


def to_api_error(error: SoqlSyntaxError, soql: str) -> ApiError:
    """The 400 error Salesforce answers with, with the caret excerpt of ``soql``."""
    prefix = excerpt(soql, error.pos) if error.excerpt else ""
    return ApiError.of(400, error.code, prefix + error.reason)


def excerpt(soql: str, pos: Pos) -> str:
    """``"\\n<line>\\n<spaces>^\\nERROR at Row:R:Column:C\\n"`` for ``pos`` in ``soql``."""
    lines = soql.split("\n") or [""]
    line = lines[min(max(pos.line, 1), len(lines)) - 1].rstrip("\r")
    caret = " " * max(pos.column - 1, 0) + "^"
    return f"\n{line}\n{caret}\nERROR at Row:{pos.line}:Column:{pos.column}\n"


def unexpected(pos: Pos, token: str) -> SoqlSyntaxError:
    return SoqlSyntaxError(MALFORMED_QUERY, pos, f"unexpected token: '{token}'")


def no_such_column(pos: Pos, name: str, entity: str) -> SoqlSyntaxError:
    return SoqlSyntaxError(
        INVALID_FIELD,
        pos,
        f"No such column '{name}' on entity '{entity}'. If you are attempting to use a custom "
        f"field, be sure to append the '__c' after the custom field name. {_WSDL_HINT}",
    )


def unknown_object(pos: Pos, name: str) -> SoqlSyntaxError:
    return SoqlSyntaxError(
        INVALID_TYPE,
        pos,
        f"sObject type '{name}' is not supported. If you are attempting to use a custom "
        f"object, be sure to append the '__c' after the entity name. {_WSDL_HINT}",
    )


def unknown_relationship(pos: Pos, name: str) -> SoqlSyntaxError:
    """Wording UNCONFIRMED in the reference; this is the text commonly reported."""
    return SoqlSyntaxError(
        INVALID_FIELD,
        pos,
        f"Didn't understand relationship '{name}' in field path. If you are attempting to use "
        f"a custom relationship, be sure to append the '__r' after the custom relationship "
        f"name. {_WSDL_HINT}",
    )


def unknown_child_relationship(pos: Pos, name: str) -> SoqlSyntaxError:
    return SoqlSyntaxError(
        INVALID_TYPE,
        pos,
        f"Didn't understand relationship '{name}' in FROM part of query call. If you are "
        f"attempting to use a custom relationship, be sure to append the '__r' after the "
        f"custom relationship name. {_WSDL_HINT}",
    )


def not_queryable(pos: Pos, name: str) -> SoqlSyntaxError:
    """An object that exists but cannot be queried (``*ChangeEvent``, ``ContentBody``): the
    observed message carries no caret excerpt."""
    return SoqlSyntaxError(
        "INVALID_TYPE_FOR_OPERATION", pos, f"entity type {name} does not support query",
        excerpt=False,
    )  # fmt: skip


def malformed(pos: Pos, reason: str) -> SoqlSyntaxError:
    return SoqlSyntaxError(MALFORMED_QUERY, pos, reason)


def wrong_literal_type(pos: Pos, field: str, type_name: str, quoted: bool) -> SoqlSyntaxError:
    """The observed Salesforce text for a literal of the wrong type (INVALID_FIELD), e.g.
    ``value of filter criterion for field 'ProductCode' must be of type string and should be
    enclosed in quotes``."""
    should = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
    return SoqlSyntaxError(
        INVALID_FIELD,
        pos,
        f"value of filter criterion for field '{field}' must be of type {type_name} and {should}",
    )
