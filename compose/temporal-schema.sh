#!/bin/sh
# One-shot (temporalio/admin-tools): create Temporal's two databases in its PostgreSQL and bring their
# schemas to this server release. Safe on every `docker compose up`: an existing database is kept and
# `update-schema` applies only the versions a database lacks. Any other failure fails the service,
# and with it everything that depends on it.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${POSTGRES_PWD:?}"
port=${DB_PORT:-5432}
schemas=/etc/temporal/schema/postgresql/v12
export SQL_PASSWORD="$POSTGRES_PWD"

sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p "$port" "$@"; }

attempt=1
until nc -z -w 5 "$POSTGRES_SEEDS" "$port"; do
  [ "$attempt" -lt 30 ] || { echo "error: PostgreSQL at $POSTGRES_SEEDS:$port never answered" >&2; exit 1; }
  attempt=$((attempt + 1)); sleep 2
done

for pair in "temporal:temporal" "temporal_visibility:visibility"; do
  db=${pair%%:*}; dir=$schemas/${pair#*:}/versioned
  if ! out=$(sql --db "$db" create 2>&1); then
    case $out in
      *"already exists"*) echo "database $db exists" ;;
      *) echo "$out" >&2; echo "error: cannot create database $db" >&2; exit 1 ;;
    esac
  fi
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "$dir"
  echo "database $db is at this release's schema"
done
