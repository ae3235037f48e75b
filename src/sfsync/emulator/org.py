"""The running org: schema, records, clock, auth, API limits, faults and settings in one object.

Everything the HTTP layer serves hangs off one :class:`Org`; the app stores it at
``app.state.org`` and every resource reads it from there. Build one with :meth:`Org.create`,
which also decides where the org keeps state that must survive a restart:

* with ``data_path`` (an SQLite file) the records live in that file, and the org id, the
  connected app's keys and the integration user's credentials live in the directory
  ``<data_path>.emulator/`` next to it, so a restarted org accepts the same client id, secret,
  password, refresh token and JWT key;
* without it everything is in memory and the key files go to a temporary directory that
  :meth:`Org.close` removes.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfsync.emulator.auth import (
    DEFAULT_SESSION_TIMEOUT,
    AuthService,
    load_or_create_credentials,
    parse_ip_ranges,
)
from sfsync.emulator.clock import OrgClock
from sfsync.emulator.faults import FaultPlan
from sfsync.emulator.ids import ID_ALPHABET, to_18
from sfsync.emulator.limits import DEVELOPER_EDITION_DAILY_REQUESTS, ApiLimits, LongRunningGate
from sfsync.emulator.schema.model import Schema

MIN_API_VERSION = 45
MAX_API_VERSION = 66
RETIRED_BELOW = 31
"""Versions 7.0-30.0 are retired (410 GONE on REST); 31.0-44.0 still exist on Salesforce but
the emulator does not serve them (404)."""

_SEASONS = ("Winter", "Spring", "Summer")


def release_label(major: int) -> str:
    """``59`` -> ``"Winter '24"``: three releases a year, anchored on v59.0 = Winter '24."""
    steps = major - 59
    return f"{_SEASONS[steps % 3]} '{(24 + steps // 3) % 100:02d}"


def api_versions() -> list[dict[str, str]]:
    """``GET /services/data/``: every served version, oldest first, with its release label."""
    return [
        {"label": release_label(v), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
        for v in range(MIN_API_VERSION, MAX_API_VERSION + 1)
    ]


def version_status(version: str) -> int:
    """200 for a served version ("59.0"), 410 for a retired one, 404 for anything else."""
    major, dot, minor = version.partition(".")
    if not (major.isdigit() and dot and minor == "0"):
        return 404
    number = int(major)
    if MIN_API_VERSION <= number <= MAX_API_VERSION:
        return 200
    if 7 <= number < RETIRED_BELOW:
        return 410
    return 404


def new_org_id() -> str:
    """A fresh 18-character organisation id (``00D`` key prefix)."""
    return to_18("00Dxx0000" + "".join(secrets.choice(ID_ALPHABET) for _ in range(6)))


@dataclass(slots=True)
class OrgSettings:
    """Knobs of the running org. ``advertise_url`` (if set) is the ``instance_url`` given to
    clients; otherwise it is derived from each request's scheme and Host."""

    org_id: str
    org_name: str = "sfsync Emulator"
    advertise_url: str | None = None
    session_timeout: float = DEFAULT_SESSION_TIMEOUT
    sandbox: bool = False


class Org:
    """The running org. Attributes are the public seams other parts of the emulator use."""

    def __init__(
        self,
        *,
        schema: Schema,
        store: Any,
        clock: OrgClock,
        auth: AuthService,
        limits: ApiLimits,
        faults: FaultPlan,
        settings: OrgSettings,
        state_dir: Path | None = None,
        owns_state_dir: bool = False,
        long_running: LongRunningGate | None = None,
    ) -> None:
        self.schema = schema
        self.store = store
        self.clock = clock
        self.auth = auth
        self.limits = limits
        self.faults = faults
        self.long_running = long_running or LongRunningGate()
        self.settings = settings
        self.state_dir = state_dir
        self._owns_state_dir = owns_state_dir
        self._stats_lock = threading.Lock()
        self._request_count = 0
        self._reset_hooks: list[Callable[[], None]] = []

    @property
    def org_id(self) -> str:
        return self.settings.org_id

    def instance_url(self, request_base: str) -> str:
        """The ``instance_url`` to give a client whose request arrived at ``request_base``."""
        return (self.settings.advertise_url or request_base).rstrip("/")

    def count_request(self) -> None:
        """Count one HTTP request for ``/__emulator__/stats``."""
        with self._stats_lock:
            self._request_count += 1

    @property
    def request_count(self) -> int:
        with self._stats_lock:
            return self._request_count

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Register extra state to clear on ``POST /__emulator__/reset`` (e.g. bulk jobs)."""
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        """Forget usage, faults and sessions (records are kept; credentials too)."""
        self.limits.reset()
        self.faults.clear()
        self.auth.expire_all()
        with self._stats_lock:
            self._request_count = 0
        for hook in self._reset_hooks:
            hook()

    def close(self) -> None:
        """Release the store and remove a temporary state directory."""
        close = getattr(self.store, "close", None)
        if callable(close):
            close()
        if self._owns_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    @classmethod
    def create(
        cls,
        *,
        schema_path: str | Path | None = None,
        data_path: str | Path | None = None,
        access_token: str | None = None,
        advertise_url: str | None = None,
        seed: str | None = None,
        clock: OrgClock | None = None,
        session_timeout: float = DEFAULT_SESSION_TIMEOUT,
        daily_api_limit: int = DEVELOPER_EDITION_DAILY_REQUESTS,
        faults: FaultPlan | None = None,
        login_ip_ranges: Sequence[str] = (),
        username: str | None = None,
        password: str | None = None,
        state_dir: str | Path | None = None,
    ) -> Org:
        """Build an org from its schema, optional SQLite file and settings.

        ``seed="demo"`` loads the demo data set into an empty store. ``state_dir`` overrides
        where credentials and key files go (see module docstring for the default).
        """
        # Imported here: the record store pulls in the SOQL engine and validation, which the
        # HTTP-layer modules (and their tests, which inject a small store) do not need.
        from sfsync.emulator.schema.loader import load_schema
        from sfsync.emulator.seed import seed_demo
        from sfsync.emulator.store import OrgStore

        clock = clock or OrgClock()
        schema = load_schema(Path(schema_path) if schema_path is not None else None)
        store = OrgStore(schema, clock, data_path=Path(data_path) if data_path else None)
        if seed is not None:
            if seed != "demo":
                raise ValueError(f"unknown seed {seed!r} (known: demo)")
            seed_demo(store)
        if state_dir is None and data_path is not None:
            state_dir = Path(f"{data_path}.emulator")
        return cls.assemble(
            schema=schema,
            store=store,
            clock=clock,
            access_token=access_token,
            advertise_url=advertise_url,
            session_timeout=session_timeout,
            daily_api_limit=daily_api_limit,
            faults=faults,
            login_ip_ranges=login_ip_ranges,
            username=username,
            password=password,
            state_dir=state_dir,
        )

    @classmethod
    def assemble(
        cls,
        *,
        schema: Schema,
        store: Any,
        clock: OrgClock,
        access_token: str | None = None,
        advertise_url: str | None = None,
        session_timeout: float = DEFAULT_SESSION_TIMEOUT,
        daily_api_limit: int = DEVELOPER_EDITION_DAILY_REQUESTS,
        faults: FaultPlan | None = None,
        login_ip_ranges: Sequence[str] = (),
        username: str | None = None,
        password: str | None = None,
        state_dir: str | Path | None = None,
    ) -> Org:
        """Build the org around an existing schema and store (``store.integration_user_id``
        names the user every login maps to). Without ``state_dir``, credentials go to a
        temporary directory removed by :meth:`close`."""
        owns = state_dir is None
        directory = (
            Path(tempfile.mkdtemp(prefix="sfsync-emulator-"))
            if state_dir is None
            else Path(state_dir)
        )
        org_id = _load_or_create_org_id(directory)
        creds = load_or_create_credentials(
            directory,
            user_id=str(store.integration_user_id),
            org_domain="sfsync-emulator.example",
            username=username or _store_username(store),
            password=password,
        )
        auth = AuthService(
            clock=clock,
            org_id=org_id,
            credentials=creds,
            jwt_key_path=directory / "jwt_key.pem",
            session_timeout=session_timeout,
            fixed_token=access_token,
            login_ip_ranges=parse_ip_ranges(login_ip_ranges),
        )
        settings = OrgSettings(
            org_id=org_id, advertise_url=advertise_url, session_timeout=session_timeout
        )
        return cls(
            schema=schema,
            store=store,
            clock=clock,
            auth=auth,
            limits=ApiLimits(clock, daily_api_limit),
            faults=faults or FaultPlan(),
            settings=settings,
            state_dir=directory,
            owns_state_dir=owns,
        )


def _store_username(store: Any) -> str | None:
    """The integration user's Username as the store holds it (so SOQL and login agree)."""
    get = getattr(store, "get", None)
    if get is None:
        return None
    record = get(store.integration_user_id)
    username = record.get("Username") if record is not None else None
    return username if isinstance(username, str) else None


def _load_or_create_org_id(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "org_id"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    org_id = new_org_id()
    path.write_text(org_id + "\n", encoding="utf-8")
    return org_id
