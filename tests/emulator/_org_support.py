"""Shared helpers for the HTTP-layer tests: an org around an empty schema and a tiny store.

The HTTP layer (auth, limits, faults, SOAP, admin) only needs ``store.integration_user_id``
from the store, so these tests inject a minimal store at that seam instead of depending on the
record store's implementation.
"""

from __future__ import annotations

from pathlib import Path

import jwt

from sfsync.emulator.clock import OrgClock
from sfsync.emulator.ids import to_18
from sfsync.emulator.org import Org
from sfsync.emulator.schema.model import Schema

USER_ID = to_18("005xx0000000001")


class MinimalStore:
    """Stands in for the record store: only the integration user's id."""

    integration_user_id = USER_ID

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def make_org(state_dir: Path | None = None, **settings: object) -> Org:
    """An org with an empty schema; ``settings`` go to :meth:`Org.assemble`."""
    clock = settings.pop("clock", None) or OrgClock()
    return Org.assemble(
        schema=Schema(objects={}),
        store=MinimalStore(),
        clock=clock,  # type: ignore[arg-type]
        state_dir=state_dir,
        **settings,  # type: ignore[arg-type]
    )


def sign_assertion(
    org: Org,
    *,
    aud: str = "https://login.salesforce.com",
    sub: str | None = None,
    iss: str | None = None,
    exp: float | None = None,
    key_pem: bytes | None = None,
) -> str:
    """A JWT bearer assertion signed with the key the org wrote to ``jwt_key_path``."""
    claims = {
        "iss": iss or org.auth.app.client_id,
        "sub": sub or org.auth.user.username,
        "aud": aud,
        # simple-salesforce sends exp as a string of digits; do the same.
        "exp": str(int(exp if exp is not None else org.clock.time() + 180)),
    }
    key = key_pem or org.auth.jwt_key_path.read_bytes()
    return jwt.encode(claims, key, algorithm="RS256")
