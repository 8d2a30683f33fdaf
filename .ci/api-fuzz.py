#!/usr/bin/env python3
"""Runs schemathesis against a release Back Office with seeded data, as an administrator, as a
limited user, as a masked user and as a scoped user (Allowed Client Tags: a tag the marker client
doesn't carry). Fails on any finding, and when a masked or scoped response contains a seeded
personal-data marker. Usage: .ci/api-fuzz.py PATH-TO-BINARY"""

import os
import re
import subprocess
import sys
import tempfile
import time

import requests

BIN = sys.argv[1]
WORK = tempfile.mkdtemp(prefix="bo-fuzz-")
DB = f"sqlite://{WORK}/bo.db"
ENV = {**os.environ, "BACKOFFICE_DATABASE_URL": DB, "BACKOFFICE_LISTEN": "127.0.0.1:0",
       "BACKOFFICE_API_RATE_PER_MINUTE": "0", "BACKOFFICE_API_RATE_PER_IP_PER_MINUTE": "0"}
ENV.pop("BACKOFFICE_SMTP_URL", None)
PASSWORD = "Fuzz-Harbour-Lantern-42"
MARKERS = ["Qxmarkfirst", "Vymarklast", "markmail@markdomain.test", "442079461377"]


def bo(*args, stdin=None):
    return subprocess.run([BIN, *args], env=ENV, input=stdin, text=True, capture_output=True, check=True)


bo("migrate")
bo("admin", "create", "--email", "fuzz-admin@example.com", "--name", "Fuzz Admin", "--password-stdin",
   "--two-factor", "disabled", stdin=PASSWORD)
server = subprocess.Popen([BIN, "serve"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
base = None
for line in server.stdout:
    m = re.match(r"Back Office listening on (\S+)", line)
    if m:
        base = m.group(1)
        break
assert base, "server did not start"


def session(email, password):
    s = requests.Session()
    page = s.get(f"{base}/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = s.post(f"{base}/login", data={"csrf": csrf, "email": email, "password": password, "next": "/"},
               allow_redirects=False)
    assert r.status_code == 303, r.text
    if s.get(f"{base}/", allow_redirects=False).headers.get("location") == "/password/change":
        page = s.get(f"{base}/password/change").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        s.post(f"{base}/password/change",
               data={"csrf": csrf, "new_password": PASSWORD + "!", "confirm_password": PASSWORD + "!"})
    page = s.get(f"{base}/profile").text
    s.headers["X-CSRF-Token"] = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    s.headers["Origin"] = base
    return s


def token(s):
    r = s.post(f"{base}/api/v1/me/tokens", json={"name": "fuzz"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


admin = session("fuzz-admin@example.com", PASSWORD)
admin_token = token(admin)
h = {"Authorization": f"Bearer {admin_token}"}
r = requests.post(f"{base}/api/v1/clients", headers=h, json={
    "first_name": "Qxmarkfirst", "last_name": "Vymarklast", "email": "markmail@markdomain.test",
    "phone": "+44 20 7946 1377", "country": "GB", "city": "Leeds", "role": "investor", "status": "active",
    "language": "en"})
assert r.status_code == 201, r.text
everything = [p["code"] for p in requests.get(f"{base}/api/v1/permissions", headers=h).json()]
g_all = requests.post(f"{base}/api/v1/groups", headers=h, json={"caption": "Everything", "permissions": everything}).json()
g_view = requests.post(f"{base}/api/v1/groups", headers=h,
                       json={"caption": "Viewers", "permissions": ["users.view", "clients.view"]}).json()
eu = requests.post(f"{base}/api/v1/tags", headers=h, json={"caption": "EU desk"}).json()
r = requests.post(f"{base}/api/v1/clients", headers=h, json={
    "first_name": "Ann", "last_name": "Inscope", "email": "ann.inscope@example.com", "phone": "+44 20 7946 1378",
    "country": "GB", "city": "York", "role": "investor", "status": "active", "language": "en", "tag_ids": [eu["id"]]})
assert r.status_code == 201, r.text
for email, group, mask, tags in [("fuzz-limited@example.com", g_view["id"], False, []),
                                 ("fuzz-masked@example.com", g_all["id"], True, []),
                                 ("fuzz-scoped@example.com", g_all["id"], False, [eu["id"]])]:
    r = requests.post(f"{base}/api/v1/users", headers=h, json={
        "email": email, "password": PASSWORD, "status": "enabled", "groups": [group], "name": "Fuzz User",
        "mask_data": mask, "allowed_tag_ids": tags})
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    r = requests.post(f"{base}/api/v1/users/{uid}/two-factor/disable", headers=h, json={"password": PASSWORD + "!"})
    assert r.status_code == 200, r.text
limited_token = token(session("fuzz-limited@example.com", PASSWORD))
masked_token = token(session("fuzz-masked@example.com", PASSWORD))
scoped_token = token(session("fuzz-scoped@example.com", PASSWORD))
# The scoped user sees the in-scope client and not the marker client (no tag).
seen = requests.get(f"{base}/api/v1/clients", headers={"Authorization": f"Bearer {scoped_token}"}).json()
assert [c["last_name"] for c in seen["items"]] == ["Inscope"], seen

hooks = os.path.join(WORK, "masked_hooks.py")
with open(hooks, "w") as f:
    f.write(f"""
import schemathesis
MARKERS = {MARKERS!r}
# Markers a checked caller has sent itself, in any request of any run (kept in a file: the
# masked run comes before the scoped one). schemathesis takes the string constants of this very
# module as test data, so a caller does write them (a group caption, a tag, say), and they come
# back from later requests, also to the next role.
SENT_FILE = {os.path.join(WORK, "sent-markers.txt")!r}

def sent_markers():
    try:
        with open(SENT_FILE) as f:
            return set(f.read().split())
    except FileNotFoundError:
        return set()

@schemathesis.check
def no_masked_markers(ctx, response, case):
    body = response.text or ""
    sent = repr((case.body, case.query, case.path_parameters, case.headers))
    new = [m for m in MARKERS if m in sent]
    if new:
        with open(SENT_FILE, "a") as f:
            f.write(" ".join(new) + " ")
    already = sent_markers()
    for m in MARKERS:
        # A value a caller sent itself may come back; anything else is a leak.
        if m in already:
            continue
        if m in body or m in str(response.headers):
            raise AssertionError(f"personal-data marker {{m}} in a masked or scoped user's response")
""")

checks = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "response_headers_conformance,negative_data_rejection,ignored_auth,unsupported_method,"
          "allow_header_conformance")
failed = False
# The administrator last: its run may change or disable the other accounts.
for role, tok in [("limited", limited_token), ("masked", masked_token), ("scoped", scoped_token),
                  ("administrator", admin_token)]:
    print(f"==> schemathesis as the {role} user", flush=True)
    env = dict(os.environ)
    cmd = ["schemathesis", "run", f"{base}/api/openapi.json", "--checks", checks, "-H", f"Authorization: Bearer {tok}",
           "--max-examples", os.environ.get("FUZZ_EXAMPLES", "25"), "--generation-database", "none", "--exclude-path", "/api/v1/me/tokens/{id}",
           "--exclude-path", "/api/v1/users/{id}/sign-out"]
    if role in ("masked", "scoped"):
        cmd[4] = checks + ",no_masked_markers"
        env["PYTHONPATH"] = WORK
        env["SCHEMATHESIS_HOOKS"] = "masked_hooks"
    # In the temporary folder: schemathesis keeps failures there and replays them (and the
    # values in their responses) in its next run, which must not be another role's run.
    result = subprocess.run(cmd, env=env, cwd=tempfile.mkdtemp(dir=WORK))
    failed |= result.returncode != 0
server.terminate()
sys.exit(1 if failed else 0)
