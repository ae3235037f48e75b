"""Every kind of problem with its line, field, message and fix; and what a valid file gives."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pydantic
import pytest

from sfsync.config.model import Connection, SyncConfig
from sfsync.config.problems import ConfigProblems
from sfsync.config.validate import load_config, parse_config, validate_file
from sfsync.connectors.salesforce.config import PasswordAuth, SalesforceConnection
from sfsync.connectors.sql.config import SqliteConnection
from sfsync.core.errors import ConfigError
from sfsync.core.retry import RetryPolicy
from sfsync.spi.registry import Registry

from .conftest import GOOD, Check


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    old: str
    new: str
    expected: tuple[tuple[int | None, str, str, str], ...]  # line, field, in message, in fix


CASES = [
    Case(
        "unknown top-level key with suggestion",
        "version: 1\n",
        "version: 1\nstat: {}\n",
        ((2, "stat", "unknown key 'stat'", "did you mean 'state'"),),
    ),
    Case(
        "unknown nested key lists allowed keys",
        "      username: u@example.com\n",
        "      username: u@example.com\n      pasword: x\n",
        ((8, "connections.crm.auth.pasword", "unknown key", "did you mean 'password'"),),
    ),
    Case(
        "unknown key in an object",
        "        fields: [Id, Name]\n",
        "        fields: [Id, Name]\n        delete: hard\n",
        ((21, "syncs[0].objects[0].delete", "unknown key 'delete'", "did you mean 'deletes'"),),
    ),
    Case(
        "missing required field",
        "      username: u@example.com\n",
        "",
        ((5, "connections.crm.auth.username", "required field is missing", "add `username:`"),),
    ),
    Case(
        "missing mode names the field and what it means",
        "    mode: polling\n",
        "",
        ((13, "syncs[0].mode", "required field is missing", "`polling` reads changes"),),
    ),
    Case(
        "bad enum value lists the allowed ones",
        "    mode: polling\n",
        "    mode: pollng\n",
        ((16, "syncs[0].mode", "'pollng' is not allowed", "did you mean 'polling'"),),
    ),
    Case(
        "bad enum value far from any",
        "        fields: [Id, Name]\n",
        "        fields: [Id, Name]\n        deletes: archive\n",
        ((21, "syncs[0].objects[0].deletes", "'archive'", "hard, soft, ignore"),),
    ),
    Case(
        "unknown auth flow",
        "      flow: password\n",
        "      flow: passwd\n",
        ((6, "connections.crm.auth.flow", "unknown flow 'passwd'", "did you mean 'password'"),),
    ),
    Case(
        "missing auth flow lists the flows",
        "      flow: password\n",
        "",
        ((5, "connections.crm.auth", "`flow` is missing", "jwt_bearer, client_credentials"),),
    ),
    Case(
        "wrong type: text for a number",
        "    url: sqlite:///demo.db\n",
        "    url: sqlite:///demo.db\n    batch_size: lots\n",
        ((12, "connections.db.batch_size", "valid integer", "whole number"),),
    ),
    Case(
        "number out of range",
        "    interval: 30s\n",
        "    interval: 30s\n    retry: {max_attempts: 0}\n",
        ((18, "syncs[0].retry.max_attempts", "must be at least 1", "Attempts in all"),),
    ),
    Case(
        "bad duration",
        "    interval: 30s\n",
        "    interval: 30 seconds\n",
        ((17, "syncs[0].interval", "'30 seconds' is not a duration", '"30s", "5m"'),),
    ),
    Case(
        "negative duration",
        "    interval: 30s\n",
        "    interval: -5\n",
        ((17, "syncs[0].interval", "cannot be negative", "number of seconds"),),
    ),
    Case(
        "duplicate sync names",
        "        fields: [Id, Name]\n",
        "        fields: [Id, Name]\n"
        "  - {name: accounts, source: crm, target: db, mode: batch, objects: [{name: Contact}]}\n",
        ((21, "syncs[1].name", "'accounts' is used twice (first at line 13)", "its own name"),),
    ),
    Case(
        "undefined connection lists defined ones",
        "    target: db\n",
        "    target: dbb\n",
        (
            (
                15,
                "syncs[0].target",
                "'dbb' is not defined",
                "did you mean 'db'? (defined connections: crm, db)",
            ),
        ),
    ),
    Case(
        "source and target are the same",
        "    target: db\n",
        "    target: crm\n",
        (
            (
                15,
                "syncs[0].target",
                "source and target are the same connection 'crm'",
                "different target",
            ),
        ),
    ),
    Case(
        "connector used in a role it cannot play",
        "    type: sqlite\n    url: sqlite:///demo.db\n",
        "    type: readonly\n    path: demo.db\n",
        ((15, "syncs[0].target", "'db' (readonly) cannot be written to", "mariadb, mysql"),),
    ),
    Case(
        "unknown connection type lists installed connectors",
        "    type: sqlite\n",
        "    type: sqlite3\n",
        (
            (
                10,
                "connections.db.type",
                "unknown connection type 'sqlite3'",
                "did you mean 'sqlite'",
            ),
        ),
    ),
    Case(
        "connection without type",
        "    type: sqlite\n",
        "",
        ((10, "connections.db.type", "`type` is missing", "mariadb, mysql, postgres"),),
    ),
    Case(
        "connection section checked by the connector's model",
        "    url: sqlite:///demo.db\n",
        "    url: /tmp/demo.db\n",
        ((11, "connections.db.url", "url must start with sqlite://", "sqlite:///relative"),),
    ),
    Case(
        "object listed twice in one sync",
        "        fields: [Id, Name]\n",
        "        fields: [Id, Name]\n      - name: account\n        table: other\n",
        ((21, "syncs[0].objects[1].name", "'account' is listed twice", "merge the two entries"),),
    ),
    Case(
        "where that is obviously not a condition",
        "        fields: [Id, Name]\n",
        "        fields: [Id, Name]\n        where: SELECT Id FROM Account\n",
        ((21, "syncs[0].objects[0].where", "whole query", "keep only what follows WHERE"),),
    ),
    Case(
        "where written with ==",
        "        fields: [Id, Name]\n",
        "        fields: [Id, Name]\n        where: Name == 'Acme'\n",
        ((21, "syncs[0].objects[0].where", "not '=='", "Industry = 'Energy'"),),
    ),
    Case(
        "interval with realtime",
        "    mode: polling\n",
        "    mode: realtime\n",
        ((17, "syncs[0].interval", "no meaning with mode realtime", "remove interval"),),
    ),
    Case(
        "fields given as one string",
        "        fields: [Id, Name]\n",
        "        fields: Id, Name\n",
        ((20, "syncs[0].objects[0].fields", "`all` or a list", "fields: [Id, Name, Industry]"),),
    ),
    Case(
        "a field listed twice points at the second",
        "        fields: [Id, Name]\n",
        "        fields:\n          - Id\n          - Name\n          - name\n",
        ((23, "syncs[0].objects[0].fields[2]", "'name' is listed twice", "list each field once"),),
    ),
    Case(
        "key field missing from an explicit field list",
        "        fields: [Id, Name]\n",
        "        fields: [Name]\n",
        ((20, "syncs[0].objects[0].fields", "key field 'Id' is not in the fields list", "add Id"),),
    ),
    Case(
        "excluding the key",
        "        fields: [Id, Name]\n",
        "        exclude_fields: [Id]\n",
        ((20, "syncs[0].objects[0].exclude_fields", "key field 'Id' is excluded", "keep it"),),
    ),
    Case(
        "exclude_fields with an explicit list",
        "        fields: [Id, Name]\n",
        "        fields: [Id, Name]\n        exclude_fields: [Name]\n",
        ((21, "syncs[0].objects[0].exclude_fields", "only applies with `fields: all`", "leave"),),
    ),
    Case(
        "retry delays in the wrong order",
        "    interval: 30s\n",
        "    interval: 30s\n    retry: {base_delay: 10s, max_delay: 1s}\n",
        ((18, "syncs[0].retry.max_delay", "shorter than base_delay", "at least as long"),),
    ),
    Case(
        "two syncs writing one table",
        "        fields: [Id, Name]\n",
        "        fields: [Id, Name]\n"
        "  - {name: more, source: crm, target: db, mode: batch, objects: [{name: Account}]}\n",
        (
            (
                21,
                "syncs[1].objects[0].name",
                "table 'account' on 'db' is already written by sync 'accounts'",
                "own `table:`",
            ),
        ),
    ),
    Case(
        "invalid sync name",
        "  - name: accounts\n",
        "  - name: All Accounts\n",
        ((13, "syncs[0].name", "'All Accounts' is not a valid name", "lower case letters"),),
    ),
    Case(
        "a single value where a mapping belongs",
        "      - name: Account\n        fields: [Id, Name]\n",
        "      - Account\n",
        ((19, "syncs[0].objects[0]", "expected a mapping, not a single value", "`name: Account`"),),
    ),
    Case(
        "access token without instance_url",
        "      flow: password\n      username: u@example.com\n      password: pw-12345\n",
        "      flow: access_token\n      access_token: tok-123456\n",
        ((3, "connections.crm", "needs instance_url", "add instance_url:"),),
    ),
    Case(
        "wrong version",
        "version: 1\n",
        "version: 2\n",
        ((1, "version", "2 is not allowed", "use one of: 1"),),
    ),
    Case(
        "empty object list",
        "    objects:\n      - name: Account\n        fields: [Id, Name]\n",
        "    objects: []\n",
        (
            (
                18,
                "syncs[0].objects",
                "is empty: at least one item is needed",
                "objects this sync carries",
            ),
        ),
    ),
    Case(
        "duplicate key in a mapping",
        "    interval: 30s\n",
        "    interval: 30s\n    interval: 1m\n",
        (
            (
                18,
                "syncs[0].interval",
                "appears twice in this mapping (first on line 17)",
                "keep one",
            ),
        ),
    ),
    Case(
        "missing environment variable at the reference's line",
        "      password: pw-12345\n",
        "      password: ${SF_PASSWORD}\n",
        ((8, "connections.crm.auth.password", "SF_PASSWORD is not set", "export SF_PASSWORD="),),
    ),
    Case(
        "api version as an unquoted number is accepted, a word is not",
        "    type: salesforce\n",
        "    type: salesforce\n    api_version: latest\n",
        ((5, "connections.crm.api_version", 'must look like "62.0"', "REST API version"),),
    ),
    Case(
        "model-level rule of a connector",
        "      flow: password\n",
        "      flow: password\n      client_id: abc\n",
        ((5, "connections.crm.auth", "client_id and client_secret go together", "or neither"),),
    ),
]


CASES += [
    Case(
        "invalid connection name",
        "  db:\n",
        "  my db:\n",
        (
            (9, "connections.my db", "'my db' is not a valid connection name", "letters, digits"),
            (
                15,
                "syncs[0].target",
                "'db' is not defined",
                "one of the defined connections: crm, my db",
            ),
        ),
    ),
    Case(
        "connection that is not a mapping",
        "  db:\n    type: sqlite\n    url: sqlite:///demo.db\n",
        "  db: sqlite\n",
        ((9, "connections.db", "must be a mapping with a `type`", "write `type: ...`"),),
    ),
    Case(
        "polling without pause",
        "    interval: 30s\n",
        "    interval: 0\n",
        ((17, "syncs[0].interval", "under 1s", "use 1s or more"),),
    ),
    Case(
        "missing private key file, relative to the config file",
        "      flow: password\n      username: u@example.com\n      password: pw-12345\n",
        "      flow: jwt_bearer\n      client_id: c\n      username: u@example.com\n"
        "      private_key_file: keys/none.pem\n",
        ((9, "connections.crm.auth.private_key_file", "none.pem does not exist", "PEM file"),),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_problem_names_line_field_message_and_fix(check: Check, case: Case) -> None:
    assert case.old in GOOD, "the case must edit the good file"
    problems = check(GOOD.replace(case.old, case.new, 1))
    got = [(p.line, p.field, p.message, p.fix) for p in problems]
    assert len(problems) == len(case.expected), got
    for problem, (line, field, message, fix) in zip(problems, case.expected, strict=True):
        assert (problem.line, problem.field) == (line, field), got
        assert message in problem.message, got
        assert fix in problem.fix, got
        assert problem.file.endswith("sync.yaml")
        assert problem.column is not None


def test_the_good_file_has_no_problems(check: Check) -> None:
    assert check(GOOD) == []


def test_many_problems_are_reported_at_once(check: Check) -> None:
    text = GOOD
    for case in CASES[:6]:
        if case.old in text:
            text = text.replace(case.old, case.new, 1)
    problems = check(text)
    assert len(problems) >= 5
    assert [p.line or 0 for p in problems] == sorted(p.line or 0 for p in problems)


def test_load_returns_frozen_models(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "sync.yaml"
    path.write_text(GOOD.lstrip("\n"), encoding="utf-8")
    config = load_config(path, registry, env={})
    assert isinstance(config, SyncConfig)
    crm = config.connection("crm")
    assert isinstance(crm, Connection)
    assert crm.type == "salesforce"
    assert isinstance(crm.config, SalesforceConnection)
    assert isinstance(crm.config.auth, PasswordAuth)
    assert crm.config.auth.password.get_secret_value() == "pw-12345"
    assert isinstance(config.connection("db").config, SqliteConnection)
    sync = config.sync("accounts")
    assert sync.interval == timedelta(seconds=30)
    assert sync.objects[0].fields == ("Id", "Name")
    assert sync.objects[0].target_table == "account"
    assert sync.retry.to_policy() == RetryPolicy(max_attempts=8, base_delay=0.5, max_delay=60.0)
    with pytest.raises(pydantic.ValidationError):
        sync.mode = "batch"
    with pytest.raises(pydantic.ValidationError):
        crm.config.api_version = "1.0"
    with pytest.raises(KeyError):
        config.sync("nope")


def test_defaults_fill_in(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "sync.yaml"
    path.write_text(GOOD.replace("    interval: 30s\n", "").lstrip("\n"), encoding="utf-8")
    config = load_config(path, registry, env={})
    sync = config.syncs[0]
    assert sync.interval is None
    assert sync.effective_interval == timedelta(minutes=1)
    assert config.state.url == "sqlite:///.sfsync/state.sqlite"
    assert sync.objects[0].deletes == "soft"
    assert sync.objects[0].key == "Id"
    assert sync.dead_letters.max_per_run == 1000


def test_load_raises_config_problems(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "sync.yaml"
    path.write_text(GOOD.replace("mode: polling", "mode: weekly").lstrip("\n"), encoding="utf-8")
    with pytest.raises(ConfigProblems) as caught:
        load_config(path, registry, env={})
    assert isinstance(caught.value, ConfigError)
    assert [p.field for p in caught.value.problems] == ["syncs[0].mode"]
    assert f"{path}:16:11: syncs[0].mode:" in str(caught.value)


def test_process_environment_is_the_default(
    tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sync.yaml"
    text = GOOD.replace("pw-12345", "${SFSYNC_TEST_PW}").lstrip("\n")
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("SFSYNC_TEST_PW", "from-env")
    config = load_config(path, registry)
    auth = config.connection("crm").config.auth  # type: ignore[attr-defined]
    assert auth.password.get_secret_value() == "from-env"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the configuration file is empty"),
        ("- a\n- b\n", "must be a mapping"),
        ("version: 1\nconnections: [a]\nsyncs: []\n", "expected a mapping"),
    ],
)
def test_whole_file_shape_problems(check: Check, text: str, message: str) -> None:
    problems = check(text)
    assert any(message in p.message for p in problems), problems


def test_secrets_never_appear_in_problems(check: Check, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("hunter2-secret\n", encoding="utf-8")
    text = (
        GOOD.replace("interval: 30s", "interval: ${file:secret}")
        .replace("url: sqlite:///demo.db", "url: postgresql://u:hunter3-secret@h/db")
        .replace("password: pw-12345", "password: pw-12345\n      client_secret: hunter4-secret")
    )
    problems = check(text)
    fields = {p.field for p in problems}
    assert {"syncs[0].interval", "connections.db.url", "connections.crm.auth"} <= fields
    rendered = "\n".join(p.render() for p in problems)
    for secret in ("hunter2-secret", "hunter3-secret", "hunter4-secret", "pw-12345"):
        assert secret not in rendered


def test_relative_private_key_file_resolves_against_the_config(
    tmp_path: Path, registry: Registry
) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "sf.pem").write_text("pem", encoding="utf-8")
    auth = "      flow: password\n      username: u@example.com\n      password: pw-12345\n"
    jwt = "      flow: jwt_bearer\n      client_id: c\n      username: u@example.com\n"
    path = tmp_path / "sync.yaml"
    path.write_text(
        GOOD.replace(auth, jwt + "      private_key_file: keys/sf.pem\n").lstrip("\n"),
        encoding="utf-8",
    )
    config = load_config(path, registry, env={})
    key_file = config.connection("crm").config.auth.private_key_file  # type: ignore[attr-defined]
    assert key_file == tmp_path / "keys" / "sf.pem"


def test_no_connector_installed(tmp_path: Path) -> None:
    path = tmp_path / "sync.yaml"
    path.write_text(GOOD.lstrip("\n"), encoding="utf-8")
    problems = validate_file(path, Registry(), env={})
    assert [p.field for p in problems] == ["connections.crm.type", "connections.db.type"]
    assert all("no connector is installed" in p.fix for p in problems)


def test_display_is_json_ready_and_hides_secrets(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "sync.yaml"
    text = GOOD.replace(
        "    type: sqlite\n    url: sqlite:///demo.db\n",
        "    type: postgres\n    url: postgresql://sync:pw-in-url@db:5432/a\n    password: pw-2\n",
    )
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    config = load_config(path, registry, env={})
    shown = config.display()
    rendered = json.dumps(shown)
    for secret in ("pw-12345", "pw-in-url", "pw-2"):
        assert secret not in rendered
    assert shown["connections"]["db"]["config"]["url"] == "postgresql://sync:****@db:5432/a"
    assert shown["connections"]["crm"]["config"]["auth"]["username"] == "u@example.com"
    assert shown["syncs"][0]["objects"][0]["fields"] == ["Id", "Name"]
    assert shown["syncs"][0]["interval"] == "30s"


def test_parse_config_from_text(registry: Registry) -> None:
    config = parse_config(GOOD, registry, env={})
    assert config.syncs[0].name == "accounts"
    with pytest.raises(ConfigProblems) as caught:
        parse_config(GOOD.replace("mode: polling", "mode: x"), registry, file="inline", env={})
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == ("inline", 17, "syncs[0].mode")


def test_several_syncs_may_write_one_salesforce_object(check: Check) -> None:
    text = GOOD + (
        "  - {name: back, source: db, target: crm, mode: batch,\n"
        "     objects: [{name: Contact, table: a, key: Ext__c, fields: [Ext__c]}]}\n"
        "  - {name: back2, source: db, target: crm, mode: batch,\n"
        "     objects: [{name: Contact, table: a, key: Ext__c, fields: [Ext__c]}]}\n"
    )
    assert check(text) == []


def test_version_may_be_quoted(check: Check) -> None:
    assert check(GOOD.replace("version: 1", 'version: "1"')) == []


def test_defaults_are_inherited_key_by_key(registry: Registry) -> None:
    text = GOOD.replace(
        "syncs:\n",
        "defaults:\n  retry: {max_attempts: 3, max_delay: 10s}\n  dead_letters: {max_per_run: 5}\n"
        "syncs:\n",
    ) + (
        "  - name: other\n    source: crm\n    target: db\n    mode: batch\n"
        "    retry: {max_delay: 2m}\n    objects: [{name: Contact}]\n"
    )
    config = parse_config(text, registry, env={})
    first, second = config.syncs
    assert (first.retry.max_attempts, first.retry.max_delay) == (3, timedelta(seconds=10))
    assert (second.retry.max_attempts, second.retry.max_delay) == (3, timedelta(minutes=2))
    assert first.dead_letters.max_per_run == second.dead_letters.max_per_run == 5
    assert config.defaults.retry.max_attempts == 3


def test_invalid_defaults_are_reported_once_where_written(check: Check) -> None:
    text = GOOD.replace("syncs:\n", "defaults:\n  retry: {max_attempts: 0}\nsyncs:\n")
    problems = check(text)
    assert [(p.line, p.field) for p in problems] == [(13, "defaults.retry.max_attempts")]
