"""SOAP ``login()`` at ``/services/Soap/u/{version}`` (partner) and ``/services/Soap/c/{version}``
(enterprise), as simple-salesforce's ``SalesforceLogin`` and older tools call it.

Contract (reference section 7):

* Request: ``Content-Type: text/xml``, ``SOAPAction: login``, an envelope whose body holds
  ``login`` with ``username`` and ``password`` (the password with the security token appended,
  unless the caller's IP is inside the org's login IP ranges). Elements are matched by local
  name, whatever prefixes the client chose.
* Success: 200 ``loginResponse/result`` with the elements in Salesforce's order
  (``metadataServerUrl, passwordExpired, sandbox, serverUrl, sessionId, userId, userInfo``),
  ``serverUrl`` = ``{instance}/services/Soap/u/{version}/{orgId15}``. The ``sessionId`` is a
  normal access token for REST.
* Failure: HTTP 500 SOAP fault, ``faultcode`` ``sf:INVALID_LOGIN``, ``faultstring``
  ``INVALID_LOGIN: Invalid username, password, security token; or user locked out.``, detail
  ``sf:LoginFault`` with ``sf:exceptionCode``/``sf:exceptionMessage``.
* Retired or unserved versions answer a 500 ``UNSUPPORTED_API_VERSION`` fault.
* Login calls do not count against the daily API allocation.

``undelete(ids[])`` is served too: the session comes from ``SessionHeader/sessionId``
(an invalid one answers an ``INVALID_SESSION_ID`` fault), the call counts one API request, and
each id is restored on its own (``UndeleteResult`` per id: ``id``/``success`` or
``errors{message, statusCode}``; a failed item's ``id`` is nil, as in SaveResult).

Other SOAP operations are not served: they answer an ``INVALID_OPERATION`` fault (UNCONFIRMED
wording) so that a client fails loudly instead of misreading an empty body.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, cast
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sfsync.emulator.auth import AuthService, LoginError
from sfsync.emulator.errors import ApiError
from sfsync.emulator.http import xml_response
from sfsync.emulator.ids import normalise

if TYPE_CHECKING:
    from sfsync.emulator.org import Org

_ENVELOPE_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_API_NS = {"u": "urn:partner.soap.sforce.com", "c": "urn:enterprise.soap.sforce.com"}
_FAULT_NS = {"u": "urn:fault.partner.soap.sforce.com", "c": "urn:fault.enterprise.soap.sforce.com"}
INVALID_LOGIN_MESSAGE = "Invalid username, password, security token; or user locked out."


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(element: ET.Element, name: str) -> ET.Element | None:
    return next((e for e in element.iter() if _local(e.tag) == name), None)


def soap_fault(flavour: str, code: str, message: str, detail: str = "UnexpectedErrorFault") -> str:
    """A Salesforce SOAP fault envelope (HTTP 500)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_ENVELOPE_NS}" xmlns:sf="{_FAULT_NS[flavour]}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{escape(f'{code}: {message}')}</faultstring>"
        f'<detail><sf:{detail} xsi:type="sf:{detail}">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        f"</sf:{detail}></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


def _element(name: str, value: object) -> str:
    if value is None:
        return f'<{name} xsi:nil="true"/>'
    if isinstance(value, bool):
        return f"<{name}>{'true' if value else 'false'}</{name}>"
    return f"<{name}>{escape(str(value))}</{name}>"


def login_response(
    flavour: str,
    version: str,
    instance_url: str,
    auth: AuthService,
    session_id: str,
    org_name: str,
    sandbox: bool,
) -> str:
    """The ``loginResponse`` envelope, elements in Salesforce's order."""
    user = auth.user
    org15 = auth.org_id[:15]
    base = instance_url.rstrip("/")
    user_info = [
        ("accessibilityMode", False),
        ("chatterExternal", False),
        ("currencySymbol", "$"),
        ("orgAttachmentFileSizeLimit", 5242880),
        ("orgDefaultCurrencyIsoCode", "USD"),
        ("orgDefaultCurrencyLocale", "en_US"),
        ("orgDisallowHtmlAttachments", False),
        ("orgHasPersonAccounts", False),
        ("organizationId", auth.org_id),
        ("organizationMultiCurrency", False),
        ("organizationName", org_name),
        ("profileId", user.profile_id),
        ("roleId", None),
        ("sessionSecondsValid", int(auth.session_timeout)),
        ("userDefaultCurrencyIsoCode", None),
        ("userEmail", user.email),
        ("userFullName", user.full_name),
        ("userId", user.user_id),
        ("userLanguage", user.language),
        ("userLocale", user.locale),
        ("userName", user.username),
        ("userTimeZone", user.time_zone),
        ("userType", "Standard"),
        ("userUiSkin", "Theme3"),
    ]
    result = [
        ("metadataServerUrl", f"{base}/services/Soap/m/{version}/{org15}"),
        ("passwordExpired", False),
        ("sandbox", sandbox),
        ("serverUrl", f"{base}/services/Soap/{flavour}/{version}/{org15}"),
        ("sessionId", session_id),
        ("userId", user.user_id),
    ]
    body = "".join(_element(k, v) for k, v in result)
    info = "".join(_element(k, v) for k, v in user_info)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_ENVELOPE_NS}" xmlns="{_API_NS[flavour]}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        f"<loginResponse><result>{body}<userInfo>{info}</userInfo></result></loginResponse>"
        "</soapenv:Body></soapenv:Envelope>"
    )


async def soap_endpoint(request: Request) -> Response:
    """Dispatch one SOAP call on ``/services/Soap/{u|c}/{version}[/{orgId}]``."""
    from sfsync.emulator.org import version_status

    org = cast("Org", request.app.state.org)
    flavour = "c" if request.url.path.startswith("/services/Soap/c/") else "u"
    version = cast(str, request.path_params["version"])
    if version_status(version) != 200:
        message = f"UNSUPPORTED_API_VERSION: Invalid Api version specified on URL: {version}"
        return xml_response(soap_fault(flavour, "UNSUPPORTED_API_VERSION", message), 500)
    try:
        envelope = ET.fromstring(await request.body())
    except ET.ParseError:
        return xml_response(
            soap_fault(flavour, "INVALID_REQUEST", "Could not parse the SOAP request"), 500
        )
    body = _find(envelope, "Body")
    operation = next(iter(body), None) if body is not None else None
    if operation is not None and _local(operation.tag) == "undelete":
        return _undelete(org, flavour, envelope, operation)
    if operation is None or _local(operation.tag) != "login":
        name = _local(operation.tag) if operation is not None else "(none)"
        return xml_response(
            soap_fault(flavour, "INVALID_OPERATION", f"Operation {name} is not supported"), 500
        )
    username_el, password_el = _find(operation, "username"), _find(operation, "password")
    username = (username_el.text or "") if username_el is not None else ""
    password = (password_el.text or "") if password_el is not None else ""
    client_ip = request.client.host if request.client else None
    try:
        grant = org.auth.soap_login(username.strip(), password, client_ip)
    except LoginError:
        return xml_response(
            soap_fault(flavour, "INVALID_LOGIN", INVALID_LOGIN_MESSAGE, "LoginFault"), 500
        )
    instance_url = org.instance_url(str(request.base_url))
    return xml_response(
        login_response(
            flavour,
            version,
            instance_url,
            org.auth,
            grant.session.access_token,
            org.settings.org_name,
            org.settings.sandbox,
        )
    )


def _undelete(org: Org, flavour: str, envelope: ET.Element, operation: ET.Element) -> Response:
    header = _find(envelope, "Header")
    session_el = _find(header, "sessionId") if header is not None else None
    try:
        session = org.auth.resolve(session_el.text if session_el is not None else None)
        org.limits.consume(1)
    except ApiError as err:
        code = err.details[0].code
        message = (
            "Invalid Session ID found in SessionHeader: Illegal Session"
            if code == "INVALID_SESSION_ID"
            else err.details[0].message
        )
        return xml_response(soap_fault(flavour, code, message), 500)
    results = []
    for id_el in (e for e in operation.iter() if _local(e.tag) == "ids"):
        record_id = (id_el.text or "").strip()
        try:
            org.store.undelete(record_id, user_id=session.user.user_id)
        except ApiError as err:
            errors = "".join(
                "<errors>"
                + "".join(_element("fields", f) for f in detail.fields)
                + _element("message", detail.message)
                + _element("statusCode", detail.code)
                + "</errors>"
                for detail in err.details
            )
            results.append(f'<result>{errors}<id xsi:nil="true"/><success>false</success></result>')
        else:
            restored = normalise(record_id)
            results.append(f"<result>{_element('id', restored)}<success>true</success></result>")
    return xml_response(
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_ENVELOPE_NS}" xmlns="{_API_NS[flavour]}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        f"<undeleteResponse>{''.join(results)}</undeleteResponse>"
        "</soapenv:Body></soapenv:Envelope>"
    )


def soap_routes() -> list[BaseRoute]:
    return [
        Route(f"/services/Soap/{flavour}/{{version}}{tail}", soap_endpoint, methods=["POST"])
        for flavour in ("u", "c")
        for tail in ("", "/", "/{org_id}")
    ]
