"""``sfsync emulator serve``: run a local Salesforce org from the command line.

The main CLI mounts :data:`emulator_app` with ``app.add_typer(emulator_app, name="emulator")``;
``python -m sfsync.emulator.cli serve`` works too. On start the command prints, one per line
as ``key: value``, everything a client needs (``instance_url``, ``access_token``,
``refresh_token``, ``client_id``, ``client_secret``, ``username``, ``password``, ``org_id``,
``jwt_key`` and, with ``--tls``, ``ca_cert``), then serves until SIGTERM or Ctrl-C and stops
cleanly (in-flight requests finish; with ``--data`` every committed write is in the file).
"""

from __future__ import annotations

import secrets
import socket
import string
import sys
from pathlib import Path
from typing import Annotated

import typer

from sfsync.emulator.faults import FaultPlan, load_fault_plan, parse_rule_spec
from sfsync.emulator.limits import DEVELOPER_EDITION_DAILY_REQUESTS
from sfsync.emulator.org import Org
from sfsync.emulator.server import RunningServer, serve
from sfsync.emulator.streaming.grpc_server import DEFAULT_GRPC_PORT

emulator_app = typer.Typer(
    name="emulator",
    help="A local, protocol-faithful Salesforce org for development and tests.",
    no_args_is_help=True,
)


@emulator_app.callback()
def _group() -> None:
    """A local, protocol-faithful Salesforce org for development and tests."""


def _fault_plan(path: Path | None, specs: list[str], seed: int | None) -> FaultPlan:
    plan = load_fault_plan(path) if path is not None else FaultPlan()
    rules = [*plan.rules, *(parse_rule_spec(spec) for spec in specs)]
    plan.replace(rules, seed=seed if seed is not None else plan.seed)
    return plan


def _announce(org: Org, token: str, server: RunningServer) -> None:
    auth = org.auth
    lines = {
        "instance_url": org.instance_url(server.url),
        "access_token": token,
        "refresh_token": auth.refresh_token,
        "client_id": auth.app.client_id,
        "client_secret": auth.app.client_secret,
        "username": auth.user.username,
        "password": auth.user.password,
        "security_token": auth.user.security_token,
        "org_id": org.org_id,
        "jwt_key": str(auth.jwt_key_path),
    }
    if server.ca_cert is not None:
        lines["ca_cert"] = str(server.ca_cert)
    if server.grpc_port is not None:
        lines["grpc_port"] = str(server.grpc_port)
    for key, value in lines.items():
        typer.echo(f"{key}: {value}")
    sys.stdout.flush()


def _free_or_any(host: str, grpc_port: int) -> int:
    """``grpc_port``, except that when it is the default (7443) and another process holds it,
    any free port (with a warning): a second local org, or a parallel test run, still starts,
    and the banner prints the port actually used. Any other busy port fails to start, as a
    busy HTTP port does."""
    if grpc_port != DEFAULT_GRPC_PORT:
        return grpc_port
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, grpc_port))
        except OSError:
            typer.echo(
                f"warning: gRPC port {grpc_port} is in use; serving the Pub/Sub API on a free "
                "port instead (see grpc_port)",
                err=True,
            )
            return 0
    return grpc_port


@emulator_app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP(S) port (0 = any free port).")] = 8765,
    grpc_port: Annotated[
        int,
        typer.Option(help="Pub/Sub API (gRPC) port (0 = any free port; TLS with --tls, same CA)."),
    ] = DEFAULT_GRPC_PORT,
    tls: Annotated[
        bool, typer.Option("--tls", help="Serve HTTPS with a generated local CA.")
    ] = False,
    certfile: Annotated[
        Path | None, typer.Option(help="With --tls: your certificate instead of a generated one.")
    ] = None,
    keyfile: Annotated[Path | None, typer.Option(help="With --certfile: its private key.")] = None,
    advertise_url: Annotated[
        str | None,
        typer.Option(help="instance_url given to clients (default: the URL they connected to)."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="SQLite file holding the org's records (default: in memory)."),
    ] = None,
    schema: Annotated[
        Path | None, typer.Option(help="YAML schema file (default: standard objects).")
    ] = None,
    access_token: Annotated[
        str | None,
        typer.Option(help="A fixed access token that is always valid (default: generated)."),
    ] = None,
    seed: Annotated[str | None, typer.Option(help="Load a data set: 'demo'.")] = None,
    faults: Annotated[Path | None, typer.Option(help="Fault plan file (YAML or JSON).")] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Fault rule, repeatable: 'METHOD PATH kind=rate,... latency=LO-HI times=N' "
            "(METHOD, latency in ms and times are optional)."
        ),
    ] = None,
    fault_seed: Annotated[int | None, typer.Option(help="Seed of the fault plan.")] = None,
    session_timeout: Annotated[
        float, typer.Option(help="Seconds of inactivity before a session expires.")
    ] = 7200.0,
    daily_api_limit: Annotated[
        int, typer.Option(help="Daily API request allocation (rolling 24 h).")
    ] = DEVELOPER_EDITION_DAILY_REQUESTS,
    login_ip_range: Annotated[
        list[str] | None,
        typer.Option(help="Allowed login IP range, repeatable (CIDR or A-B); default: any."),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Where credentials and keys are kept (default: next to --data)."),
    ] = None,
) -> None:
    """Serve a local Salesforce org until SIGTERM or Ctrl-C."""
    try:
        plan = _fault_plan(faults, fault or [], fault_seed)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: bad fault plan: {exc}", err=True)
        raise typer.Exit(2) from exc
    if certfile is not None and not tls:
        typer.echo("error: --certfile needs --tls", err=True)
        raise typer.Exit(2)
    org = Org.create(
        schema_path=schema,
        data_path=data,
        access_token=access_token,
        advertise_url=advertise_url,
        seed=seed,
        session_timeout=session_timeout,
        daily_api_limit=daily_api_limit,
        faults=plan,
        login_ip_ranges=login_ip_range or [],
        state_dir=state_dir,
    )
    token = access_token
    if token is None:
        # Shaped like a real session id and, like --access-token, valid until the org stops.
        alphabet = string.ascii_letters + string.digits
        token = f"{org.org_id[:15]}!" + "".join(secrets.choice(alphabet) for _ in range(96))
        org.auth.fixed_token = token
    fixed = token
    serve(
        org,
        host,
        port,
        tls=tls,
        certfile=certfile,
        keyfile=keyfile,
        tls_dir=(state_dir / "tls") if state_dir else None,
        on_started=lambda server: _announce(org, fixed, server),
        grpc_port=_free_or_any(host, grpc_port),
    )


if __name__ == "__main__":
    emulator_app()
