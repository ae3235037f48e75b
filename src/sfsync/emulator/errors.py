"""Errors the emulator answers with, in Salesforce's shapes.

Raise :class:`ApiError` anywhere below the HTTP layer; the app renders it as Salesforce does:
``[{"message": ..., "errorCode": ..., "fields": [...]}]`` with the HTTP status. Inside DML
results (sObject Collections, composite tree) the same error renders with ``statusCode``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One error item."""

    code: str
    message: str
    fields: tuple[str, ...] = ()

    def rest(self) -> dict[str, object]:
        """The REST error-array item (``errorCode``)."""
        return {"message": self.message, "errorCode": self.code, "fields": list(self.fields)}

    def dml(self) -> dict[str, object]:
        """The DML-result item used by collections and tree (``statusCode``)."""
        return {"statusCode": self.code, "message": self.message, "fields": list(self.fields)}


@dataclass(slots=True)
class ApiError(Exception):
    """An error response: HTTP ``status`` with one or more :class:`ErrorDetail`."""

    status: int
    details: tuple[ErrorDetail, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, status: int, code: str, message: str, fields: tuple[str, ...] = ()) -> ApiError:
        return cls(status, (ErrorDetail(code, message, fields),))

    def __str__(self) -> str:
        return "; ".join(f"{d.code}: {d.message}" for d in self.details)

    def body(self) -> list[dict[str, object]]:
        return [d.rest() for d in self.details]
