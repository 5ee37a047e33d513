#!/bin/sh
# Copies a Tessera SQLite database into a PostgreSQL database, so a deployment can move to
# several instances without logging anybody out: users, OAuth clients, sessions (with their
# current refresh tokens), signing keys and the refresh-token secret all move (so device tokens
# keep working). Login throttle counters stay behind: they matter for 15 minutes at most.
#
# usage: sqlite-to-postgres.sh SQLITE_FILE POSTGRES_URL
#
# Before: stop every `tessera serve` on SQLITE_FILE (a refresh after the copy would be lost),
# and create the schema with `tessera migrate --database POSTGRES_URL`. The PostgreSQL tables
# must be empty: the script refuses otherwise. It needs `sqlite3` and `psql`; it does not need
# `tessera`, and it reads the SQLite file without changing it. The import is one transaction:
# it all arrives or nothing does. See docs/deploy.md.
set -eu

if [ $# -ne 2 ]; then
  echo "usage: $0 SQLITE_FILE POSTGRES_URL" >&2
  exit 2
fi
src=$1
dst=$2
[ -f "$src" ] || { echo "$0: no such file: $src" >&2; exit 1; }
case $src in /*) ;; *) src=$PWD/$src ;; esac # the import runs in a temporary directory
for tool in sqlite3 psql; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is not installed" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# Export as CSV, converting SQLite's types to the text forms PostgreSQL reads: 16-byte BLOB ids
# as 32 hex digits (a valid uuid), other BLOBs as bytea hex ('\x…'), 0/1 flags as f/t. SQLite
# writes NULL as an empty field and an empty string as "", which is exactly how PostgreSQL's CSV
# input tells them apart.
export_table() { # name, SELECT
  sqlite3 -readonly -bail -csv "$src" "$2" >"$tmp/$1.csv"
}
export_table users \
  "SELECT lower(hex(id)), username, username_key, password_hash, created_at FROM users"
# The built-in client `tessera` is created by the PostgreSQL migration itself.
export_table clients \
  "SELECT id, name, kind, '\\x' || lower(hex(secret_hash)), created_at, removed_at
     FROM clients WHERE id <> 'tessera'"
export_table sessions \
  "SELECT lower(hex(id)), lower(hex(user_id)), generation, '\\x' || lower(hex(token_hash)),
          created_at, rotated_at, last_used_at, revoked_at, revoked_reason, user_agent, ip,
          client_id
     FROM sessions"
export_table signing_keys \
  "SELECT kid, alg, '\\x' || lower(hex(private_key)), CASE sealed WHEN 0 THEN 'f' ELSE 't' END,
          created_at, activate_at
     FROM signing_keys"
export_table secrets \
  "SELECT name, '\\x' || lower(hex(material)), CASE sealed WHEN 0 THEN 'f' ELSE 't' END
     FROM secrets"

cd "$tmp"
psql "$dst" -X -q -v ON_ERROR_STOP=1 --single-transaction <<'SQL'
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM sessions)
     OR EXISTS (SELECT 1 FROM clients WHERE id <> 'tessera')
     OR EXISTS (SELECT 1 FROM signing_keys) OR EXISTS (SELECT 1 FROM secrets) THEN
    RAISE EXCEPTION 'the PostgreSQL database already holds Tessera data; refusing to merge';
  END IF;
END $$;
\copy users (id, username, username_key, password_hash, created_at) FROM 'users.csv' WITH (FORMAT csv)
\copy clients (id, name, kind, secret_hash, created_at, removed_at) FROM 'clients.csv' WITH (FORMAT csv)
\copy sessions (id, user_id, generation, token_hash, created_at, rotated_at, last_used_at, revoked_at, revoked_reason, user_agent, ip, client_id) FROM 'sessions.csv' WITH (FORMAT csv)
\copy signing_keys (kid, alg, private_key, sealed, created_at, activate_at) FROM 'signing_keys.csv' WITH (FORMAT csv)
\copy secrets (name, material, sealed) FROM 'secrets.csv' WITH (FORMAT csv)
ANALYZE users, clients, sessions, signing_keys, secrets;
SQL

# The same number of rows on both sides, table by table.
for table in users clients sessions signing_keys secrets; do
  before=$(sqlite3 -readonly "$src" "SELECT count(*) FROM $table")
  after=$(psql "$dst" -X -q -t -A -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM $table")
  if [ "$before" != "$after" ]; then
    echo "$0: $table: $before rows in SQLite but $after in PostgreSQL" >&2
    exit 1
  fi
  echo "$table: $after rows copied"
done
