"""The registry of connectors: an explicit object, filled from entry points or by hand.

Production builds it with :meth:`Registry.from_entry_points`, which loads every
``sfsync.connectors`` entry point (each names a :class:`ConnectorSpec`). Tests build an empty
``Registry()`` and register fakes. There is no global registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points

from sfsync.core.errors import ConfigError
from sfsync.spi.spec import ConnectorSpec

ENTRY_POINT_GROUP = "sfsync.connectors"


class UnknownConnectorError(ConfigError, KeyError):
    """No connector of that type is registered."""


class Registry:
    """Connector specs by name."""

    def __init__(self, specs: Iterable[ConnectorSpec] = ()) -> None:
        self._specs: dict[str, ConnectorSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ConnectorSpec) -> None:
        """Add ``spec``.

        Raises:
            ValueError: a connector of that name is already registered.
        """
        if spec.name in self._specs:
            raise ValueError(f"connector {spec.name!r} is registered twice")
        self._specs[spec.name] = spec

    def get(self, name: str) -> ConnectorSpec:
        """The spec called ``name``.

        Raises:
            UnknownConnectorError: none is registered; the message lists those that are.
        """
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownConnectorError(
                f"unknown connector type {name!r}",
                hint=f"use one of: {known}",
            ) from None

    def names(self) -> list[str]:
        """Registered connector names, sorted."""
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    @classmethod
    def from_entry_points(cls, group: str = ENTRY_POINT_GROUP) -> Registry:
        """A registry with every connector installed in this environment.

        Raises:
            TypeError: an entry point does not name a :class:`ConnectorSpec`.
        """
        registry = cls()
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            spec = ep.load()
            if not isinstance(spec, ConnectorSpec):
                raise TypeError(f"entry point {ep.name!r} ({ep.value}) is not a ConnectorSpec")
            registry.register(spec)
        return registry
