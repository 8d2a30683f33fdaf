#!/usr/bin/env python3
"""Latency of the client directory with 1,000,000 clients and of the event log with 1,000,000
rows (the speed targets of the clients and event-log issues), on SQLite and, when
BENCH_POSTGRES_URL is set (e.g. postgres://postgres@127.0.0.1:5432/postgres), on PostgreSQL:
clients page 1, a deep keyset page, an email-prefix search and a detail page, as an unmasked and as
a masked user (who searches by ID instead); the event log's first page, a filtered page (actor +
time range) and an object's history. Each with wrk at 16 connections for 10 s. Then the median
cost of writing one event (examples/event_cost.rs).

Usage: benchmarks/latency.py [BINARY] [CLIENTS] [EVENTS]
(defaults: target/release/backoffice 1000000 1000000). Prints a Markdown table; latency.md
records a run."""

import os
import re
import subprocess
import sys
import tempfile

import requests

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/backoffice"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
EVENTS = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
EVENT_COST = os.path.join(os.path.dirname(os.path.abspath(BIN)), "examples", "event_cost")
PASSWORD = "Quartz-Harbour-Lantern-42"
DURATION = os.environ.get("BENCH_SECONDS", "10")


def run_backend(label, db_url):
    env = {**os.environ, "BACKOFFICE_DATABASE_URL": db_url, "BACKOFFICE_LISTEN": "127.0.0.1:0",
           "BACKOFFICE_API_RATE_PER_MINUTE": "0", "BACKOFFICE_API_RATE_PER_IP_PER_MINUTE": "0",
           "RUST_LOG": "warn"}
    env.pop("BACKOFFICE_SMTP_URL", None)
    bo = lambda *a, stdin=None: subprocess.run([BIN, *a], env=env, input=stdin, text=True, capture_output=True, check=True)
    bo("migrate")
    bo("admin", "create", "--email", "bench@example.com", "--name", "Bench", "--password-stdin", "--two-factor",
       "disabled", stdin=PASSWORD)
    seeded = bo("demo", "seed", "--clients", str(N), "--events", str(EVENTS))
    print(f"{label}: {' '.join(seeded.stdout.split())}", file=sys.stderr)
    server = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    base = None
    for line in server.stdout:
        m = re.match(r"Back Office listening on (\S+)", line)
        if m:
            base = m.group(1)
            break

    def session(email, password):
        s = requests.Session()
        page = s.get(f"{base}/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        s.post(f"{base}/login", data={"csrf": csrf, "email": email, "password": password, "next": "/"},
               allow_redirects=False)
        if s.get(f"{base}/", allow_redirects=False).headers.get("location") == "/password/change":
            page = s.get(f"{base}/password/change").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            s.post(f"{base}/password/change", data={"csrf": csrf, "new_password": PASSWORD + "!",
                                                     "confirm_password": PASSWORD + "!"})
        page = s.get(f"{base}/profile").text
        s.headers["X-CSRF-Token"] = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        s.headers["Origin"] = base
        return s

    admin = session("bench@example.com", PASSWORD)
    perms = [p["code"] for p in admin.get(f"{base}/api/v1/permissions").json()]
    group = admin.post(f"{base}/api/v1/groups", json={"caption": "Everything", "permissions": perms}).json()
    user = admin.post(f"{base}/api/v1/users", json={"email": "masked@example.com", "password": PASSWORD,
                                                      "status": "enabled", "groups": [group["id"]], "name": "Masked",
                                                      "mask_data": True}).json()
    admin.post(f"{base}/api/v1/users/{user['id']}/two-factor/disable", json={"password": PASSWORD + "!"})
    masked = session("masked@example.com", PASSWORD)
    mid = N // 2
    deep = N - 100
    sample = admin.get(f"{base}/api/v1/clients/{mid}").json()
    prefix = sample["email"][:4]
    scenarios = [
        ("unmasked", admin, "list page 1", "/clients"),
        ("unmasked", admin, "deep page (keyset)", f"/clients?after={deep}"),
        ("unmasked", admin, f"email prefix search ({prefix!r})", f"/clients?by=email&q={prefix}"),
        ("unmasked", admin, "detail", f"/clients/{mid}"),
        ("masked", masked, "list page 1", "/clients"),
        ("masked", masked, "deep page (keyset)", f"/clients?after={deep}"),
        ("masked", masked, "search by ID", f"/clients?by=id&q={mid}"),
        ("masked", masked, "detail", f"/clients/{mid}"),
        ("unmasked", admin, "event log first page", "/events"),
        ("unmasked", admin, "event log: actor + time range", "/events?actor=bench%40example.com&from=2026-03-01&to=2026-09-30"),
        ("unmasked", admin, "event log: one object's history", "/events?target_type=client&target_id=500"),
        ("masked", masked, "event log first page", "/events"),
    ]
    rows = []
    for who, s, name, path in scenarios:
        cookie = "; ".join(f"{k}={v}" for k, v in s.cookies.items())
        assert s.get(f"{base}{path}").status_code == 200, path
        out = subprocess.run(["wrk", "-t2", "-c16", f"-d{DURATION}s", "--latency", "-H", f"Cookie: {cookie}",
                              f"{base}{path}"], capture_output=True, text=True, check=True).stdout
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
        p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)
        p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        rows.append((label, who, name, rps, p50, p99, errors.group(1) if errors else "0"))
    server.terminate()
    server.wait()
    if os.path.exists(EVENT_COST):
        cost = subprocess.run([EVENT_COST, db_url, "2000"], capture_output=True, text=True, check=True).stdout.strip()
        print(f"{label}: {cost}", file=sys.stderr)
        rows.append((label, "-", "one event written (own transaction): " + cost.split(": ", 1)[1], "", "", "", ""))
    return rows


def main():
    results = []
    with tempfile.TemporaryDirectory() as d:
        results += run_backend("SQLite", f"sqlite://{d}/bench.db")
    pg = os.environ.get("BENCH_POSTGRES_URL")
    if pg:
        name = f"bo_bench_{os.getpid()}"
        subprocess.run(["psql", pg, "-qc", f"CREATE DATABASE {name}"], check=True)
        try:
            results += run_backend("PostgreSQL", pg.rsplit("/", 1)[0] + "/" + name)
        finally:
            subprocess.run(["psql", pg, "-qc", f"DROP DATABASE {name} WITH (FORCE)"])
    print("| database | viewer | scenario | req/s | p50 | p99 | non-2xx |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print("| " + " | ".join(r) + " |")


main()
