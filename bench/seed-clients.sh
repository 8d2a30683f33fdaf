#!/usr/bin/env bash
# Times `backoffice demo seed --clients N` on a fresh SQLite database, and on a fresh
# PostgreSQL database when BENCH_POSTGRES_URL (a server URL ending in /postgres or /test) is set.
# Usage: bench/seed-clients.sh [N]   (default 1000000). Record results in seed-clients.md.
set -euo pipefail
n="${1:-1000000}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release -p backoffice --manifest-path "$root/Cargo.toml"
bin="$root/target/release/backoffice"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
echo "SQLite:"
BACKOFFICE_DATABASE_URL="sqlite://$dir/seed.db" "$bin" demo seed --clients "$n" 2>/dev/null
if [ -n "${BENCH_POSTGRES_URL:-}" ]; then
  db="bo_seed_bench_$$"
  psql "$BENCH_POSTGRES_URL" -qc "CREATE DATABASE $db"
  echo "PostgreSQL:"
  BACKOFFICE_DATABASE_URL="${BENCH_POSTGRES_URL%/*}/$db" "$bin" demo seed --clients "$n" 2>/dev/null || true
  psql "$BENCH_POSTGRES_URL" -qc "DROP DATABASE $db"
fi
