"""The sync configuration as frozen models: what a YAML file means once it is valid.

The shape, from the top::

    version: 1
    state: {url: "sqlite:///.sfsync/state.sqlite"}
    connections:            # named endpoints; `type` picks the connector that validates the rest
      crm: {type: salesforce, auth: {...}}
      warehouse: {type: postgres, url: ...}
    syncs:                  # one pipeline each, from a source connection to a target connection
      - name: accounts-to-warehouse
        source: crm
        target: warehouse
        mode: polling
        interval: 1m
        objects:
          - name: Account
            fields: [Id, Name, Industry]

Every model is frozen and forbids unknown keys, so a typo is an error rather than a silently
ignored setting. Every field has a description: ``scripts/gen_config_docs.py`` turns them into
``docs/configuration.md``. Connection sections are validated by the connector's own model (its
``ConnectorSpec.config``), found through the registry; :class:`Connection` keeps the type name
with the validated model. Checks across fields and sections (unknown connections, duplicate
names) live in :mod:`sfsync.config.checks`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    InstanceOf,
    PlainSerializer,
    PlainValidator,
    SerializeAsAny,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sfsync.config.durations import Duration
from sfsync.config.where import check_condition
from sfsync.core.conflicts import ConflictRules, Policy, Side
from sfsync.core.retry import RetryPolicy

SYNC_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
API_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,79}$"
_API_NAME = re.compile(API_NAME)
SyncMode = Literal["batch", "polling", "realtime"]
DeleteMode = Literal["hard", "soft", "ignore"]
Direction = Literal["one_way", "two_way"]
SideName = Literal["salesforce", "external"]
PolicyName = Literal["salesforce_wins", "external_wins", "newest_wins", "field_ownership", "manual"]

DEFAULT_POLLING_INTERVAL = timedelta(minutes=1)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _field_list(value: object) -> Literal["all"] | tuple[str, ...]:
    """``fields``: the word ``all`` or a non-empty list of distinct API names."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    fix = "write `fields: all`, or a list such as `fields: [Id, Name, Industry]`"
    if isinstance(value, str):
        # `fields: Id, Name` is a common slip: YAML reads it as one string.
        raise PydanticCustomError(
            "field_list", "fields must be `all` or a list of field names", {"fix": fix}
        )
    if not isinstance(value, list | tuple) or not value:
        raise PydanticCustomError(
            "field_list", "fields must be `all` or a non-empty list of field names", {"fix": fix}
        )
    return _unique_names(value)


def _unique_names(value: object) -> tuple[str, ...]:
    """A list of distinct field API names (case-insensitively distinct, as Salesforce is)."""
    if not isinstance(value, list | tuple):
        raise PydanticCustomError(
            "field_list", "expected a list of field names", {"fix": "write [Name, Industry]"}
        )
    seen: set[str] = set()
    for index, name in enumerate(value):
        if not isinstance(name, str) or not _API_NAME.fullmatch(name):
            raise PydanticCustomError(
                "api_name",
                "'{name}' is not a field API name",
                {
                    "name": str(name),
                    "index": index,
                    "fix": "use API names such as Name or Custom_Field__c",
                },
            )
        if name.lower() in seen:
            raise PydanticCustomError(
                "duplicate_name",
                "'{name}' is listed twice",
                {
                    "name": name,
                    "index": index,
                    "fix": "list each field once (names are case-insensitive)",
                },
            )
        seen.add(name.lower())
    return tuple(value)


def _dump_names(value: str | tuple[str, ...]) -> str | list[str]:
    return value if isinstance(value, str) else list(value)


_NAMES_SCHEMA = {"type": "array", "items": {"type": "string", "pattern": API_NAME}, "minItems": 1}
FieldNames = Annotated[
    Literal["all"] | tuple[str, ...],
    PlainValidator(_field_list),
    PlainSerializer(_dump_names),
    WithJsonSchema({"anyOf": [{"const": "all"}, _NAMES_SCHEMA]}),
]
FieldNameList = Annotated[
    tuple[str, ...],
    PlainValidator(_unique_names),
    PlainSerializer(_dump_names),
    WithJsonSchema({**_NAMES_SCHEMA, "minItems": 0}),
]


class StateConfig(_Frozen):
    """Where sfsync keeps its own state: checkpoints, key maps, dead letters, conflicts, audit."""

    url: str = Field(
        default="sqlite:///.sfsync/state.sqlite",
        repr=False,
        description="`sqlite:///path` (embedded, one process) or `postgresql://user@host/db` "
        "(production, several workers). A relative SQLite path is relative to the working "
        "directory.",
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        scheme = value.partition("://")[0].lower() if "://" in value else ""
        if scheme not in {"sqlite", "postgresql", "postgres", "postgresql+psycopg"}:
            raise PydanticCustomError(
                "state_url",
                "the state store must be SQLite or PostgreSQL",
                {"fix": "write sqlite:///.sfsync/state.sqlite or postgresql://user@host/db"},
            )
        return value


class RetryConfig(_Frozen):
    """How a failed call is retried: exponential backoff with full jitter."""

    max_attempts: int = Field(
        default=8, ge=1, le=100, description="Attempts in all, counting the first one."
    )
    base_delay: Duration = Field(
        default=timedelta(milliseconds=500),
        description="Longest wait before the first retry; each retry may wait twice as long.",
    )
    max_delay: Duration = Field(
        default=timedelta(seconds=60), description="No wait between attempts is longer."
    )
    deadline: Duration | None = Field(
        default=None,
        description="Give up once this long has passed since the first attempt; none by default.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max_delay < self.base_delay:
            raise PydanticCustomError(
                "delay_order",
                "max_delay is shorter than base_delay",
                {"fix": "make max_delay at least as long as base_delay", "at": "max_delay"},
            )
        return self

    def to_policy(self) -> RetryPolicy:
        """The :class:`~sfsync.core.retry.RetryPolicy` the runtime applies."""
        return RetryPolicy(
            max_attempts=self.max_attempts,
            base_delay=self.base_delay.total_seconds(),
            max_delay=self.max_delay.total_seconds(),
            deadline=self.deadline.total_seconds() if self.deadline is not None else None,
        )


class DeadLetterConfig(_Frozen):
    """What happens to events that cannot be applied (bad value, validation rule)."""

    max_per_run: int | None = Field(
        default=1000,
        ge=0,
        description="Fail the run once more events than this were dead-lettered in it: so many "
        "failures point at a mapping or permission problem, not at bad records. `null` never "
        "fails; 0 fails on the first.",
    )
    retention: Duration = Field(
        default=timedelta(days=30),
        description="How long dead letters are kept for inspection and replay.",
    )


FieldKey = Annotated[str, StringConstraints(pattern=API_NAME)]


class ConflictConfig(_Frozen):
    """How a two-way sync settles a record both sides changed since the last sync.

    Changes to different fields always merge; a policy decides only a field both sides changed
    to different values, and a record deleted on one side and updated on the other
    (docs/conflicts.md).
    """

    policy: PolicyName = Field(
        default="manual",
        description="For every field without its own policy, and for a delete against an "
        "update: `salesforce_wins`, `external_wins`, `newest_wins` (the later commit; a tie "
        "goes to Salesforce), `field_ownership` (the field's owner, see `owners`) or `manual` "
        "(parked for `sfsync conflicts resolve`; nothing is overwritten unseen).",
    )
    fields: dict[FieldKey, PolicyName] = Field(
        default={},
        description="Policies of single fields, overriding `policy`: `{Phone: external_wins}`.",
    )
    owners: dict[FieldKey, SideName] = Field(
        default={},
        description="With `field_ownership`: the side that owns each field, `salesforce` or "
        "`external`: `{Email: external}`. Fields not listed belong to `default_owner`.",
    )
    default_owner: SideName = Field(
        default="salesforce",
        description="Owner of the fields `owners` does not list, and of the record itself "
        "(a delete against an update) under `field_ownership`.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for at in ("fields", "owners"):
            seen: set[str] = set()
            for name in getattr(self, at):
                if name.lower() in seen:
                    raise PydanticCustomError(
                        "duplicate_name",
                        "'{name}' is listed twice",
                        {
                            "name": name,
                            "at": at,
                            "fix": "list each field once (names are case-insensitive)",
                        },
                    )
                seen.add(name.lower())
        uses_ownership = self.policy == "field_ownership" or "field_ownership" in set(
            self.fields.values()
        )
        if self.owners and not uses_ownership:
            raise PydanticCustomError(
                "unused_owners",
                "owners are set, but no field is decided by field_ownership",
                {
                    "at": "owners",
                    "fix": "set `policy: field_ownership` (or a field's policy), or remove owners",
                },
            )
        return self

    def to_rules(self) -> ConflictRules:
        """The :class:`~sfsync.core.conflicts.ConflictRules` the runtime applies."""
        return ConflictRules(
            policy=Policy(self.policy),
            fields={k: Policy(v) for k, v in self.fields.items()},
            owners={k: Side(v) for k, v in self.owners.items()},
            default_owner=Side(self.default_owner),
        )


class ObjectSync(_Frozen):
    """One object (Salesforce sObject, or table) that a sync carries, and how."""

    name: str = Field(
        pattern=API_NAME,
        description="API name of the Salesforce object, such as `Account` or `Invoice__c`.",
    )
    fields: FieldNames = Field(
        default="all",
        description="`all`, or the list of field API names to carry.",
    )
    exclude_fields: FieldNameList = Field(
        default=(),
        description="Fields left out (with `fields: all`), e.g. large text or sensitive fields.",
    )
    where: str | None = Field(
        default=None,
        description="Row filter as a SOQL condition, without `WHERE`: `Industry != null AND "
        "IsDeleted = false`.",
    )
    table: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$",
        description="Table on the SQL side; default: the object name in snake_case without "
        "`__c` (`Invoice_Line__c` -> `invoice_line`).",
    )
    deletes: DeleteMode = Field(
        default="soft",
        description="`soft` marks deleted rows (`is_deleted`, `deleted_at`), `hard` deletes "
        "them, `ignore` keeps them untouched.",
    )
    key: str = Field(
        default="Id",
        pattern=API_NAME,
        description="Field that identifies a record on both sides: `Id`, or an external id "
        "field for writes into Salesforce, so that a retry can never create a duplicate.",
    )
    conflicts: ConflictConfig = Field(
        default_factory=ConflictConfig,
        description="Two-way syncs only: how a record both sides changed is settled.",
    )
    match_on: FieldNameList = Field(
        default=(),
        description="Two-way syncs only: fields that pair the records both sides already hold "
        "when the sync first runs, tried in order (`[External_Id__c, Email]`); text is "
        "compared trimmed and case-insensitively, duplicates are reported, never merged. "
        "Records no field pairs are copied across as new.",
    )

    @field_validator("where")
    @classmethod
    def _condition(cls, value: str | None) -> str | None:
        if value is None:
            return None
        issue = check_condition(value)
        if issue is not None:
            raise PydanticCustomError("condition", issue.message, {"fix": issue.fix})
        return value.strip()

    @property
    def target_table(self) -> str:
        """``table``, or the name derived from the object's API name."""
        return self.table or derive_table(self.name)

    @property
    def all_fields(self) -> bool:
        """Whether every field of the object is carried (less ``exclude_fields``)."""
        return self.fields == "all"


def derive_table(object_name: str) -> str:
    """The default table of an object: ``Invoice_Line__c`` -> ``invoice_line``.

    CamelCase becomes snake_case: ``OpportunityLineItem`` -> ``opportunity_line_item``.
    """
    base = object_name.removesuffix("__c").removesuffix("__C")
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", base)
    return re.sub(r"_+", "_", snake).lower()


class SyncDef(_Frozen):
    """One pipeline: objects carried from a source connection to a target connection."""

    name: str = Field(
        pattern=SYNC_NAME,
        description="Unique name: lower case letters, digits, `-` and `_`. Checkpoints are "
        "stored under it, so renaming a sync starts it afresh.",
    )
    description: str | None = Field(default=None, description="Free text for people.")
    enabled: bool = Field(default=True, description="`false` keeps the sync defined but stopped.")
    source: str = Field(min_length=1, description="Name of the connection read from.")
    target: str = Field(min_length=1, description="Name of the connection written to.")
    direction: Direction = Field(
        default="one_way",
        description="`one_way` copies from `source` to `target`; `two_way` keeps the two in "
        "step both ways (one of them must be Salesforce), drops the sync's own writes when "
        "they come back, and settles conflicts by each object's `conflicts` policy.",
    )
    mode: SyncMode = Field(
        description="`batch` copies everything on each run (Bulk API), `polling` reads changes "
        "every `interval`, `realtime` follows Change Data Capture as it happens."
    )
    interval: Duration | None = Field(
        default=None,
        description="Time between runs: with `polling` (default 1m) or `batch` (default: run "
        "once). Not allowed with `realtime`.",
    )
    initial_load: bool = Field(
        default=True,
        description="Copy existing records before following changes (snapshot, then stream).",
    )
    objects: tuple[ObjectSync, ...] = Field(
        min_length=1, description="The objects this sync carries."
    )
    retry: RetryConfig = Field(default_factory=RetryConfig, description="Retries of failed calls.")
    dead_letters: DeadLetterConfig = Field(
        default_factory=DeadLetterConfig, description="Handling of events that cannot be applied."
    )

    @property
    def effective_interval(self) -> timedelta | None:
        """``interval`` with the mode's default: 1m for polling, ``None`` (no repeat) otherwise."""
        if self.interval is None and self.mode == "polling":
            return DEFAULT_POLLING_INTERVAL
        return self.interval


class Connection(_Frozen):
    """A validated connection section: the connector ``type`` and the connector's own model."""

    type: str = Field(description="Connector name, as listed by `sfsync connectors`.")
    # SerializeAsAny: dump the connector's own fields, not those of the declared BaseModel.
    config: SerializeAsAny[InstanceOf[BaseModel]] = Field(
        description="The section validated by the connector's `ConnectorSpec.config` model."
    )


class SyncDefaults(_Frozen):
    """Settings every sync inherits, key by key, unless it sets them itself.

    With ``defaults: {retry: {max_attempts: 5}}``, a sync that writes
    ``retry: {max_delay: 5m}`` gets both settings; one that writes no ``retry`` gets the
    default's. The merge happens on the file's data, before the syncs are validated.
    """

    retry: RetryConfig = Field(
        default_factory=RetryConfig, description="Retries of failed calls, for every sync."
    )
    dead_letters: DeadLetterConfig = Field(
        default_factory=DeadLetterConfig,
        description="Handling of events that cannot be applied, for every sync.",
    )


INHERITED = ("retry", "dead_letters")
"""The sections of a sync that :class:`SyncDefaults` fills in."""


def inherit_defaults(sync: Any, defaults: dict[str, Any]) -> Any:
    """``sync`` (raw data) with the sections of ``defaults`` it does not set merged in."""
    if not isinstance(sync, dict):
        return sync
    merged = dict(sync)
    for key in INHERITED:
        inherited = defaults.get(key)
        own = merged.get(key)
        if not isinstance(inherited, dict):
            continue
        if key not in merged:
            merged[key] = inherited
        elif isinstance(own, dict):
            merged[key] = {**inherited, **own}
    return merged


class SyncConfig(_Frozen):
    """A whole configuration file."""

    version: Literal[1] = Field(description="Format version of this file; always 1 for now.")
    state: StateConfig = Field(
        default_factory=StateConfig, description="Where sfsync keeps its own state."
    )
    defaults: SyncDefaults = Field(
        default_factory=SyncDefaults,
        description="`retry` and `dead_letters` settings that every sync inherits, key by "
        "key, unless it sets them itself.",
    )
    connections: dict[str, Connection] = Field(
        description="Named endpoints. Each has a `type` (a connector) and that connector's "
        "settings; see the connection sections below."
    )
    syncs: tuple[SyncDef, ...] = Field(min_length=1, description="The pipelines to run.")

    def display(self) -> dict[str, Any]:
        """The configuration as JSON-ready data that is safe to show: secret fields read
        ``**********`` and passwords inside URLs (``postgresql://u:pw@h/db``) read ``****``.

        For ``sfsync`` commands and the admin API that show the configuration in effect.
        """
        shown: dict[str, Any] = _mask_urls(self.model_dump(mode="json"))
        return shown

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        # `version: "1"` means the same as `version: 1`.
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    def sync(self, name: str) -> SyncDef:
        """The sync called ``name``.

        Raises:
            KeyError: there is none.
        """
        for sync in self.syncs:
            if sync.name == name:
                return sync
        raise KeyError(name)

    def connection(self, name: str) -> Connection:
        """The connection called ``name``.

        Raises:
            KeyError: there is none.
        """
        return self.connections[name]


_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@")


def _mask_urls(value: Any) -> Any:
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\g<head>****@", value)
    if isinstance(value, dict):
        return {k: _mask_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_urls(v) for v in value]
    return value
