"""The SQL connection sections: ``postgres``, ``mysql`` / ``mariadb`` and ``sqlite``.

Each is its own model, chosen by ``type``, with a SQLAlchemy-style ``url``. A URL may embed a
password; to keep it out of the file, leave it out of the URL and set ``password`` (usually
``${PGPASSWORD}`` or ``${file:...}``), which wins over the URL's. Validation messages never
repeat a URL, since it may hold a password; use :attr:`display_url` to show one.

Example::

    warehouse:
      type: postgres
      url: postgresql://sync@db.internal:5432/analytics
      password: ${file:/run/secrets/pg}
      schema: salesforce
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_$]*$"


def _scheme_check(*schemes: str) -> AfterValidator:
    def check(url: str) -> str:
        scheme = url.partition("://")[0].lower() if "://" in url else ""
        if scheme not in schemes:
            raise ValueError(f"url must start with {' or '.join(s + '://' for s in schemes)}")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - evaluating it is what validates the port
        except ValueError:
            raise ValueError("url is not a valid URL (check the port and brackets)") from None
        if scheme != "sqlite" and not parts.hostname:
            raise ValueError("url names no host: write scheme://user@host:port/database")
        return url

    return AfterValidator(check)


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``****``, for logs and status pages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo = f"{parts.username or ''}:****@"
    host = parts.netloc.rpartition("@")[2]
    return SplitResult(parts.scheme, userinfo + host, parts.path, parts.query, "").geturl()


class _SqlBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    batch_size: int = Field(
        default=1000, ge=1, le=100_000, description="Rows per multi-row statement or COPY chunk."
    )
    pool_size: int = Field(default=5, ge=1, le=100, description="Connections kept open at most.")
    connect_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait when opening a connection."
    )

    capture: Literal["triggers", "updated_at"] = Field(
        default="triggers",
        description="How changes are read when this database is a sync's source: `triggers` "
        "(a change log table kept by triggers that `sfsync db install-capture` creates; sees "
        "deletes) or `updated_at` (polls a timestamp column; no triggers needed, no deletes).",
    )
    updated_at_column: str = Field(
        default="updated_at",
        pattern=_IDENTIFIER,
        description="With `capture: updated_at`, the column every write sets to the time of "
        "the change.",
    )
    capture_settle: float = Field(
        default=2.0,
        ge=0,
        description="With `capture: updated_at`, seconds a timestamp must be old before its "
        "rows are read, so that rows of transactions still committing are not skipped.",
    )
    capture_poll_interval: float = Field(
        default=10.0,
        gt=0,
        description="Seconds between reads of the change log while a source follows it "
        "(PostgreSQL: the safety net behind LISTEN/NOTIFY).",
    )
    capture_key_columns: dict[str, str] = Field(
        default_factory=dict,
        description="Per table, the column holding the value of the object's `key` field, "
        "where it is not the field's name or that name in lower case: `{invoice: ext_ref}`.",
    )
    capture_columns: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Per table, the field a column becomes where that is not the column's "
        "name (nor its spelling in `fields`), such as a parent reference by external id: "
        "`{contacts: {account_ref: Account.Ext_Id__c}}`.",
    )

    @property
    def display_url(self) -> str:
        """The URL with its password masked."""
        url: str = getattr(self, "url")  # noqa: B009 - every subclass declares `url`
        return mask_url(url)


class _ServerSql(_SqlBase):
    """A database behind a server, reached over the network with a user and password."""

    password: SecretStr | None = Field(
        default=None, description="Database password; overrides one in `url`."
    )


PostgresUrl = Annotated[str, _scheme_check("postgresql", "postgres", "postgresql+psycopg")]
MySqlUrl = Annotated[str, _scheme_check("mysql", "mariadb", "mysql+pymysql")]
SqliteUrl = Annotated[str, _scheme_check("sqlite")]


class PostgresConnection(_ServerSql):
    """A PostgreSQL database (read through triggers or polling, written with COPY and merge)."""

    type: Literal["postgres"] = Field(description="Selects PostgreSQL.")
    url: PostgresUrl = Field(repr=False, description="`postgresql://user@host:5432/database`.")
    db_schema: str = Field(
        default="public",
        alias="schema",
        pattern=_IDENTIFIER,
        description="Schema holding the synced tables.",
    )
    load_csv_pages: bool = Field(
        default=True,
        description="Load a Salesforce Bulk snapshot's CSV pages of new records with `COPY` as "
        "they are (PostgreSQL parses them; no Python object per record). `false` applies them "
        "record by record, as every other batch is. A page the database refuses as text is "
        "applied record by record either way.",
    )


class MySqlConnection(_ServerSql):
    """A MySQL or MariaDB database (through PyMySQL)."""

    type: Literal["mysql", "mariadb"] = Field(description="Selects MySQL or MariaDB.")
    url: MySqlUrl = Field(repr=False, description="`mysql://user@host:3306/database`.")
    capture_gap_timeout: float = Field(
        default=300.0,
        gt=0,
        description="With `capture: triggers`, seconds a hole in the change log's sequence "
        "is waited for (a transaction still open) when the server cannot tell whether the "
        "transaction that took it is still running.",
    )


class SqliteConnection(_SqlBase):
    """A SQLite file: the embedded default, for demos and small installations."""

    type: Literal["sqlite"] = Field(description="Selects SQLite.")
    url: SqliteUrl = Field(
        repr=False,
        description="`sqlite:///relative/path.db`, `sqlite:////absolute/path.db` "
        "or `sqlite:///:memory:`.",
    )


SqlConnection = Annotated[
    PostgresConnection | MySqlConnection | SqliteConnection, Field(discriminator="type")
]
"""Any SQL connection, chosen by ``type``."""

SQL_CONNECTION_MODELS: dict[str, type[BaseModel]] = {
    "postgres": PostgresConnection,
    "mysql": MySqlConnection,
    "mariadb": MySqlConnection,
    "sqlite": SqliteConnection,
}
"""The model for each connection ``type`` this connector answers to (for its ConnectorSpecs)."""
