"""``sfsync emulator serve`` as a user runs it: a subprocess, SIGTERM, restart with --data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sfsync.emulator.cli import emulator_app

KEYS = (
    "instance_url",
    "access_token",
    "refresh_token",
    "client_id",
    "client_secret",
    "username",
    "password",
    "org_id",
    "jwt_key",
)


@contextmanager
def running_cli(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """Start the CLI, read its ``key: value`` banner, and always stop it on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sfsync.emulator.cli", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    info: dict[str, str] = {}
    try:
        assert process.stdout is not None
        while "jwt_key" not in info or ("--tls" in args and "ca_cert" not in info):
            line = process.stdout.readline()
            if not line:
                _, err = process.communicate(timeout=10)
                raise AssertionError(f"CLI exited early: {err}")
            key, _, value = line.strip().partition(": ")
            info[key] = value
        yield process, info
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def stop(process: subprocess.Popen[str], signum: int = signal.SIGTERM) -> int:
    process.send_signal(signum)
    process.communicate(timeout=20)
    return process.returncode


@pytest.mark.slow
def test_serve_prints_credentials_stops_on_sigterm_and_keeps_data(tmp_path: Path) -> None:
    data = tmp_path / "org.sqlite"
    with running_cli("--data", str(data), "--access-token", "cli-token") as (process, info):
        assert set(KEYS) <= set(info)
        assert info["access_token"] == "cli-token"
        assert info["instance_url"].startswith("http://127.0.0.1:")
        assert Path(info["jwt_key"]).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        headers = {"Authorization": "Bearer cli-token"}
        base = f"{info['instance_url']}/services/data/v59.0"
        created = httpx.post(f"{base}/sobjects/Account/", json={"Name": "Acme"}, headers=headers)
        assert created.status_code == 201, created.text
        record_id = created.json()["id"]
        assert stop(process) == 0
    with running_cli("--data", str(data)) as (process, again):
        # Same org and connected app after a restart; a generated token this time.
        assert again["org_id"] == info["org_id"]
        assert again["client_id"] == info["client_id"]
        assert again["access_token"].startswith(info["org_id"][:15] + "!")
        headers = {"Authorization": f"Bearer {again['access_token']}"}
        base = f"{again['instance_url']}/services/data/v59.0"
        fetched = httpx.get(f"{base}/sobjects/Account/{record_id}", headers=headers)
        assert fetched.status_code == 200
        assert fetched.json()["Name"] == "Acme"
        assert stop(process) == 0


@pytest.mark.slow
def test_serve_with_tls_prints_the_ca_and_answers_https(tmp_path: Path) -> None:
    import ssl

    args = ("--tls", "--state-dir", str(tmp_path / "state"))
    with running_cli(*args) as (process, info):
        assert info["instance_url"].startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=info["ca_cert"])
        token = httpx.post(
            f"{info['instance_url']}/services/oauth2/token",
            data={
                "grant_type": "password",
                "client_id": info["client_id"],
                "client_secret": info["client_secret"],
                "username": info["username"],
                "password": info["password"],
            },
            verify=context,
        )
        assert token.status_code == 200, token.text
        assert stop(process) == 0


def test_ctrl_c_stops_cleanly_too(tmp_path: Path) -> None:
    with running_cli("--state-dir", str(tmp_path)) as (process, info):
        assert info["username"]
        assert stop(process, signal.SIGINT) == 0


def test_help_documents_the_reserved_grpc_port() -> None:
    result = CliRunner().invoke(emulator_app, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--grpc-port" in result.output
    assert "Pub/Sub" in result.output


def test_bad_fault_spec_is_a_usage_error() -> None:
    result = CliRunner().invoke(emulator_app, ["serve", "--fault", "GET /x teapot=1"])
    assert result.exit_code == 2
