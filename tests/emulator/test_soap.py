"""SOAP login(), driven by simple-salesforce unchanged and by raw envelopes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from _org_support import make_org
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from simple_salesforce.login import SalesforceLogin

from sfsync.emulator.app import build_app
from sfsync.emulator.org import Org
from sfsync.emulator.server import RunningServer, serve_in_background

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    org = Org.create(state_dir=tmp_path / "state")
    yield org
    org.close()


@pytest.fixture
def server(org: Org, tmp_path: Path) -> Iterator[RunningServer]:
    with serve_in_background(org, tls=True, tls_dir=tmp_path / "tls") as running:
        yield running


class RedirectToEmulator(HTTPAdapter):
    """Sends requests for *.salesforce.com hosts to the emulator (clients hard-code them)."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target.rstrip("/")

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = str(request.url)
        for host in ("https://login.salesforce.com", "https://test.salesforce.com"):
            if url.startswith(host):
                request.url = self.target + url[len(host) :]
        return super().send(request, **kwargs)


def trusting_session(server: RunningServer) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace our CA
    session.verify = str(server.ca_cert)
    session.mount("https://", RedirectToEmulator(server.url))
    return session


def test_simple_salesforce_soap_login_then_rest(server: RunningServer, org: Org) -> None:
    session = trusting_session(server)
    user = org.auth.user
    assert user.username == "integration@sfsync.emulator"  # the store's integration user
    session_id, instance = SalesforceLogin(
        username=user.username,
        password=user.password,
        security_token=user.security_token,
        session=session,
        scratch_url=server.url,
    )
    assert instance == f"127.0.0.1:{server.port}"
    sf = Salesforce(instance=instance, session_id=session_id, session=session)
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 15000
    assert sf.api_usage["api-usage"].used == 1


def test_simple_salesforce_soap_login_failure(server: RunningServer, org: Org) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        SalesforceLogin(
            username=org.auth.user.username,
            password="wrong",
            security_token="token",
            session=trusting_session(server),
            scratch_url=server.url,
        )
    assert failure.value.code == "INVALID_LOGIN"
    assert b"Invalid username, password, security token" in failure.value.content


def test_simple_salesforce_jwt_flow_against_the_emulator(server: RunningServer, org: Org) -> None:
    session = trusting_session(server)
    sf = Salesforce(
        username=org.auth.user.username,
        consumer_key=org.auth.app.client_id,
        privatekey_file=str(org.auth.jwt_key_path),
        session=session,
    )
    assert sf.sf_instance == f"127.0.0.1:{server.port}"
    assert sf.limits()["DailyApiRequests"]["Remaining"] == 14999


def test_simple_salesforce_password_flow(server: RunningServer, org: Org) -> None:
    sf = Salesforce(
        username=org.auth.user.username,
        password=org.auth.user.password,
        security_token=org.auth.user.security_token,
        consumer_key=org.auth.app.client_id,
        consumer_secret=org.auth.app.client_secret,
        session=trusting_session(server),
    )
    assert sf.session_id.startswith(org.org_id[:15] + "!")


LOGIN_ENVELOPE = """<?xml version="1.0" encoding="utf-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
                  xmlns:urn="urn:enterprise.soap.sforce.com">
  <soapenv:Body><urn:login><urn:username>{u}</urn:username>
  <urn:password>{p}</urn:password></urn:login></soapenv:Body></soapenv:Envelope>"""

NS = "{urn:enterprise.soap.sforce.com}"


async def test_login_response_element_order_and_enterprise_endpoint(tmp_path: Path) -> None:
    org = make_org(tmp_path)
    try:
        transport = httpx.ASGITransport(app=build_app(org))
        async with httpx.AsyncClient(transport=transport, base_url="https://emu.test") as client:
            user = org.auth.user
            response = await client.post(
                "/services/Soap/c/59.0",
                content=LOGIN_ENVELOPE.format(
                    u=user.username, p=user.password + user.security_token
                ),
                headers={"Content-Type": "text/xml", "SOAPAction": "login"},
            )
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/xml")
            result = ET.fromstring(response.text).find(f".//{NS}result")
            assert result is not None
            order = [child.tag.removeprefix(NS) for child in result]
            assert order == [
                "metadataServerUrl",
                "passwordExpired",
                "sandbox",
                "serverUrl",
                "sessionId",
                "userId",
                "userInfo",
            ]
            server_url = result.findtext(f"{NS}serverUrl")
            assert server_url == f"https://emu.test/services/Soap/c/59.0/{org.org_id[:15]}"
            assert result.findtext(f".//{NS}sessionSecondsValid") == "7200"
            session_id = result.findtext(f"{NS}sessionId")
            rest = await client.get(
                "/services/data/v59.0/limits/", headers={"Authorization": f"Bearer {session_id}"}
            )
            assert rest.status_code == 200
            # Logins are not metered; the one REST call is.
            assert rest.headers["Sforce-Limit-Info"] == "api-usage=1/15000"
    finally:
        org.close()


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/services/Soap/u/20.0", "UNSUPPORTED_API_VERSION"),
        ("/services/Soap/u/59.0", "INVALID_LOGIN"),
    ],
)
async def test_faults(tmp_path: Path, path: str, code: str) -> None:
    org = make_org(tmp_path)
    try:
        transport = httpx.ASGITransport(app=build_app(org))
        async with httpx.AsyncClient(transport=transport, base_url="https://emu.test") as client:
            response = await client.post(
                path,
                content=LOGIN_ENVELOPE.format(u="x@y.z", p="bad"),
                headers={"Content-Type": "text/xml", "SOAPAction": "login"},
            )
        assert response.status_code == 500
        root = ET.fromstring(response.text)
        assert root.findtext(".//faultcode") == f"sf:{code}"
        exception_code = root.findtext(".//{urn:fault.partner.soap.sforce.com}exceptionCode")
        assert exception_code == code
    finally:
        org.close()


UNDELETE_ENVELOPE = """<?xml version="1.0" encoding="utf-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
                  xmlns:urn="urn:partner.soap.sforce.com">
  <soapenv:Header><urn:SessionHeader><urn:sessionId>{token}</urn:sessionId></urn:SessionHeader>
  </soapenv:Header>
  <soapenv:Body><urn:undelete>{ids}</urn:undelete></soapenv:Body></soapenv:Envelope>"""

PARTNER = "{urn:partner.soap.sforce.com}"


async def test_undelete_restores_from_the_recycle_bin(tmp_path: Path) -> None:
    org = Org.create(state_dir=tmp_path / "state", access_token="soap-token")
    try:
        record_id = org.store.insert("Account", {"Name": "Acme"})
        org.store.delete(record_id)
        ids = f"<urn:ids>{record_id}</urn:ids><urn:ids>{record_id[:15]}</urn:ids>"
        transport = httpx.ASGITransport(app=build_app(org))
        async with httpx.AsyncClient(transport=transport, base_url="https://emu.test") as client:
            response = await client.post(
                "/services/Soap/u/59.0",
                content=UNDELETE_ENVELOPE.format(token="soap-token", ids=ids),
                headers={"Content-Type": "text/xml", "SOAPAction": "undelete"},
            )
            assert response.status_code == 200, response.text
            results = ET.fromstring(response.text).findall(f".//{PARTNER}result")
            assert [r.findtext(f"{PARTNER}success") for r in results] == ["true", "false"]
            assert results[0].findtext(f"{PARTNER}id") == record_id
            assert results[1].findtext(f".//{PARTNER}statusCode") == "UNDELETE_FAILED"
            assert org.store.get(record_id)["IsDeleted"] is False
            assert org.limits.used() == 1
            refused = await client.post(
                "/services/Soap/u/59.0",
                content=UNDELETE_ENVELOPE.format(token="bad", ids=ids),
                headers={"Content-Type": "text/xml", "SOAPAction": "undelete"},
            )
            assert refused.status_code == 500
            assert ET.fromstring(refused.text).findtext(".//faultcode") == "sf:INVALID_SESSION_ID"
    finally:
        org.close()
