#!/usr/bin/env python3
"""What an integrator does with the API document, against a release Back Office: validates the
served /api/openapi.json with openapi-spec-validator, generates a Python client from it with
openapi-python-client (warnings are failures), and drives the server through that client only —
a token made with the session cookie and X-CSRF-Token, then users, groups, clients and the event
log with the token, and errors. Every answer must parse into the generated models with no field
the document doesn't declare. Usage: .ci/generated-client.py PATH-TO-BINARY"""

import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import attrs
import requests

BIN = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
WORK = tempfile.mkdtemp(prefix="bo-client-")
PASSWORD = "Client-Harbour-Lantern-42"

# The document's `servers` comes from BACKOFFICE_PUBLIC_URL: give the server its real address.
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    PORT = s.getsockname()[1]
BASE = f"http://127.0.0.1:{PORT}"
ENV = {**os.environ, "BACKOFFICE_DATABASE_URL": f"sqlite://{WORK}/bo.db", "BACKOFFICE_LISTEN": f"127.0.0.1:{PORT}",
       "BACKOFFICE_PUBLIC_URL": BASE, "BACKOFFICE_API_RATE_PER_MINUTE": "0", "BACKOFFICE_API_RATE_PER_IP_PER_MINUTE": "0"}
ENV.pop("BACKOFFICE_SMTP_URL", None)


def step(label, started=[time.monotonic()]):
    now = time.monotonic()
    print(f"  {label} ({now - started[0]:.1f} s)", flush=True)
    started[0] = now


def bo(*args, stdin=None):
    return subprocess.run([BIN, *args], env=ENV, input=stdin, text=True, capture_output=True, check=True)


bo("migrate")
bo("admin", "create", "--email", "client-admin@example.com", "--name", "Client Admin", "--password-stdin",
   "--two-factor", "disabled", stdin=PASSWORD)
server = subprocess.Popen([BIN, "serve"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    for line in server.stdout:
        if line.startswith("Back Office listening on"):
            break
    else:
        sys.exit("server did not start")
    step("server started")

    doc_path = os.path.join(WORK, "openapi.json")
    document = requests.get(f"{BASE}/api/openapi.json").json()
    with open(doc_path, "w") as f:
        json.dump(document, f)
    assert document["servers"][0]["url"] == BASE, document["servers"]
    subprocess.run(["openapi-spec-validator", doc_path], check=True)
    step("openapi-spec-validator")

    subprocess.run(["openapi-python-client", "generate", "--path", doc_path, "--output-path",
                    os.path.join(WORK, "bo_client"), "--meta", "none", "--fail-on-warning",
                    "--config", os.path.join(HERE, "openapi-python-client.yml")], check=True, stdout=subprocess.DEVNULL)
    sys.path.insert(0, WORK)
    from bo_client import AuthenticatedClient, Client
    from bo_client.api.clients import create_client, export_clients, get_client, list_clients, update_client
    from bo_client.api.events import export_events, list_events
    from bo_client.api.groups import create_group, export_groups, import_groups, list_permissions
    from bo_client.api.me import create_token, get_me, revoke_token
    from bo_client.api.users import create_user, get_user, list_users, update_user
    from bo_client.models import (ClientIn, ClientOut, ClientPage, ClientRole, ClientStatus, ClientUpdate, ErrorBody,
                                  EventOut, EventPage, GroupIn, GroupOut, GroupsFile, ImportOut, Language, MeOut,
                                  NewTokenOut, PageSize, Permission, PermissionOut, SortDirection, TokenIn, TwoFactor,
                                  UserCreate, UserOut, UserPage, UserSort, UserStatus, UserUpdate)
    step("openapi-python-client generated the client")

    def parsed(value, kind):
        """`value` is a `kind` in which every object, however deep, held only declared fields."""
        assert isinstance(value, kind), f"expected {kind.__name__}, got {value!r}"

        def walk(v):
            if attrs.has(type(v)):
                extra = getattr(v, "additional_properties", {})
                assert not extra or type(v).__name__ == "ErrorBodyFields", f"undeclared {extra} in {v!r}"
                for a in attrs.fields(type(v)):
                    walk(getattr(v, a.name))
            elif isinstance(v, list):
                for item in v:
                    walk(item)

        walk(value)
        return value

    # Sign in with the form, as a person does, and make a token with the session cookie.
    web = requests.Session()
    csrf = lambda page: re.search(r'name="csrf" value="([^"]+)"', web.get(f"{BASE}{page}").text).group(1)
    r = web.post(f"{BASE}/login", data={"csrf": csrf("/login"), "email": "client-admin@example.com",
                                        "password": PASSWORD, "next": "/"}, allow_redirects=False)
    assert r.status_code == 303, r.text
    if web.get(f"{BASE}/", allow_redirects=False).headers.get("location") == "/password/change":
        web.post(f"{BASE}/password/change", data={"csrf": csrf("/password/change"), "new_password": PASSWORD + "!",
                                                  "confirm_password": PASSWORD + "!"})
    cookie_name = document["components"]["securitySchemes"]["session"]["name"]
    session = Client(base_url=BASE, cookies={cookie_name: web.cookies[cookie_name]},
                     headers={"X-CSRF-Token": csrf("/profile"), "Origin": BASE}, raise_on_unexpected_status=True)
    token = parsed(create_token.sync(client=session, body=TokenIn(name="generated client", expires_in_days=1)),
                   NewTokenOut)
    assert isinstance(token.created_at, datetime.datetime)
    api = AuthenticatedClient(base_url=BASE, token=token.token, raise_on_unexpected_status=True)
    step("signed in; token made with the session cookie and X-CSRF-Token")

    me = parsed(get_me.sync(client=api), MeOut)
    assert me.is_admin and me.user.status is UserStatus.ENABLED and me.user.two_factor is TwoFactor.DISABLED
    perms = [parsed(p, PermissionOut) for p in list_permissions.sync(client=api)]
    assert {p.code for p in perms} == set(Permission)
    group = parsed(create_group.sync(client=api, body=GroupIn(caption="Desk", permissions=[
        Permission.CLIENTS_VIEW, Permission.CLIENTS_UPDATE])), GroupOut)
    file = parsed(export_groups.sync(client=api), GroupsFile)
    assert file.version == 1 and [g.caption for g in file.groups] == ["Desk"]
    assert parsed(import_groups.sync(client=api, body=file, replace=True), ImportOut).imported == 1
    user = parsed(create_user.sync(client=api, body=UserCreate(
        email="desk@example.com", password=PASSWORD, status=UserStatus.ENABLED, groups=[group.id], name="Desk User")),
        UserOut)
    changed = parsed(update_user.sync(user.id, client=api, body=UserUpdate(name="Desk Person")), UserOut)
    assert (changed.name, changed.email, changed.status) == ("Desk Person", user.email, UserStatus.ENABLED)
    first = parsed(list_users.sync(client=api, sort=UserSort.EMAIL, dir_=SortDirection.DESC, limit=1), UserPage)
    assert first.total == 2 and first.items[0].email == "desk@example.com" and first.next_cursor
    rest = parsed(list_users.sync(client=api, sort=UserSort.EMAIL, dir_=SortDirection.DESC, limit=1,
                                  cursor=first.next_cursor), UserPage)
    assert rest.items[0].email == "client-admin@example.com" and rest.next_cursor is None
    assert parsed(get_user.sync(user.id, client=api), UserOut).groups[0].caption == "Desk"
    step("me, permissions, groups (export and import), users (create, patch, two pages)")

    new = parsed(create_client.sync(client=api, body=ClientIn(
        first_name="Greta", last_name="Lindqvist", email="greta@example.com", phone="+49 30 901820",
        country="DE", city="Berlin", role=ClientRole.STRATEGY_PROVIDER, status=ClientStatus.ACTIVE,
        language=Language.DE)), ClientOut)
    assert (new.phone, new.role, new.language) == ("+4930901820", ClientRole.STRATEGY_PROVIDER, Language.DE)
    assert parsed(get_client.sync(new.id, client=api), ClientOut).to_dict() == new.to_dict()
    moved = parsed(update_client.sync(new.id, client=api, body=ClientUpdate(city="Hamburg")), ClientOut)
    assert (moved.city, moved.first_name, moved.status) == ("Hamburg", "Greta", ClientStatus.ACTIVE)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    page = parsed(list_clients.sync(client=api, role=ClientRole.STRATEGY_PROVIDER, from_=today, limit=PageSize.VALUE_25),
                  ClientPage)
    assert [c.id for c in page.items] == [new.id] and page.next_cursor is None
    page = parsed(list_clients.sync(client=api, limit=PageSize.VALUE_25), ClientPage)
    assert page.total == 1 and page.total_is_lower_bound is False
    csv = export_clients.sync(client=api, from_=today)
    assert isinstance(csv, str) and "Greta" in csv
    step("clients (create, get, patch, list, export)")

    events = parsed(list_events.sync(client=api), EventPage)
    assert events.items and all(isinstance(e.at, datetime.datetime) for e in events.items)
    assert "Client created" in [e.event for e in events.items]
    if events.next_cursor is not None:
        parsed(list_events.sync(client=api, before=events.next_cursor), EventPage)
    lines = export_events.sync(client=api, to=today).splitlines()
    exported = [parsed(EventOut.from_dict(json.loads(line)), EventOut) for line in lines]
    assert {e.id for e in events.items} <= {e.id for e in exported}
    step("events (list, export as JSON lines)")

    missing = parsed(get_client.sync(999_999, client=api), ErrorBody)
    assert missing.error
    twice = create_client.sync_detailed(client=api, body=ClientIn(
        first_name="Greta", last_name="Lindqvist", email="GRETA@example.com", phone="+49 30 901821",
        country="DE", city="Berlin", role=ClientRole.INVESTOR, status=ClientStatus.ACTIVE, language=Language.DE))
    assert twice.status_code == 409 and "email" in parsed(twice.parsed, ErrorBody).fields.additional_properties
    bad = list_clients.sync_detailed(client=api, country="XX")
    assert bad.status_code == 422 and "country" in parsed(bad.parsed, ErrorBody).fields.additional_properties
    http = api.get_httpx_client()
    r = http.patch(f"/api/v1/clients/{new.id}", json={"city": None})
    assert r.status_code == 422, r.text
    parsed(ErrorBody.from_dict(r.json()), ErrorBody)
    r = http.delete("/api/v1/clients")
    assert r.status_code == 405 and r.headers["allow"] == "GET,HEAD,POST", r.headers
    parsed(ErrorBody.from_dict(r.json()), ErrorBody)
    assert revoke_token.sync_detailed(token.id, client=api).status_code == 204
    gone = get_me.sync_detailed(client=api)
    assert gone.status_code == 401 and parsed(gone.parsed, ErrorBody).error
    step("errors (404, 409, 422, PATCH null, 405, revoked token 401)")
finally:
    server.terminate()
    server.wait()
print("the generated client parsed every answer")
shutil.rmtree(WORK)
