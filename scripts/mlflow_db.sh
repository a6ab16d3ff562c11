#!/usr/bin/env bash
# PostgreSQL as MLflow's runs database on the Ray head (scripts/mlflow_server.sh starts it when
# PHASELAB_MLFLOW_DB_URI=local; the tests start throwaway ones with it):
#   bash scripts/mlflow_db.sh start|stop|status|uri|backup
# A PostgreSQL cluster of its own in PHASELAB_PG_DIR, on this node's local disk (never on NFS/EFS),
# listening on 127.0.0.1 only (the MLflow server on this node is its only client) and on a Unix socket
# only its owner can open. `start` creates it once (initdb), starts it, and creates the role and
# database "mlflow" with a password generated here: it is written to a 0600 pgpass file
# ($PHASELAB_PG_DIR/pgpass, for libpq's PGPASSFILE) and never printed or put on a command line.
# `uri` prints the database's URI *without* the password. As root (containers, CI) the cluster runs
# as the `postgres` system user: PostgreSQL refuses to run as root. Settings (environment):
#   PHASELAB_PG_DIR     cluster folder: data/, run/ (socket), server.log, pgpass, uri
#                       (default ~/.phaselab-mlflow/postgres)
#   PHASELAB_PG_PORT    TCP port on 127.0.0.1 (default 5433; a Debian system cluster keeps 5432)
#   PHASELAB_PG_BIN     PostgreSQL's bin folder (default: the newest /usr/lib/postgresql/*/bin)
#   PHASELAB_PG_BACKUP  dump on the shared storage (default $PHASELAB_SHARED/mlflow/postgres/mlflow.dump):
#                       `backup` writes it (cron on the head, and before `ray down`); `start` restores
#                       it into a database it has just created, so runs outlive the head
set -euo pipefail

dir="${PHASELAB_PG_DIR:-$HOME/.phaselab-mlflow/postgres}"
port="${PHASELAB_PG_PORT:-5433}"
shared="${PHASELAB_SHARED:-/mnt/shared}"
dump="${PHASELAB_PG_BACKUP:-$shared/mlflow/postgres/mlflow.dump}"
db=mlflow
role=mlflow
data="$dir/data"
sock="$dir/run"
pgpass="$dir/pgpass"

die() { echo "phaselab: $*" >&2; exit 1; }

find_bin() {
    if [ -n "${PHASELAB_PG_BIN:-}" ]; then echo "$PHASELAB_PG_BIN"; return; fi
    local found
    found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$found" ] && command -v pg_ctl >/dev/null 2>&1; then found="$(dirname "$(command -v pg_ctl)")"; fi
    [ -n "$found" ] && [ -x "$found/initdb" ] && [ -x "$found/pg_ctl" ] \
        || die "PostgreSQL not found (sudo apt-get install -y postgresql, or set PHASELAB_PG_BIN)"
    echo "$found"
}

# PostgreSQL refuses to run as root: then its programs run as the `postgres` system user.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        (cd "$dir" && runuser -u postgres -- "$@")
    else
        (cd "$dir" && "$@")
    fi
}

superuser() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

running() { [ -f "$data/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }

psql_admin() {  # SQL on stdin, as the cluster's superuser over the Unix socket (peer authentication)
    as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U "$(superuser)" -d postgres "$@"
}

init() {
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root needs the postgres system user (apt-get install postgresql)"
        chown postgres:postgres "$dir"
        runuser -u postgres -- test -x "$dir" || die "the postgres user cannot reach $dir (a parent folder is private)"
    fi
    as_owner mkdir -m 700 -p "$sock"
    as_owner "$bin/initdb" -D "$data" --encoding=UTF8 --no-locale --auth-local=peer \
        --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
        || { tail -n 20 "$dir/initdb.log" >&2; die "initdb failed"; }
    as_owner tee -a "$data/postgresql.conf" >/dev/null <<EOF
# phaselab (scripts/mlflow_db.sh): loopback and a private socket only; no statement text in the log
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
unix_socket_permissions = 0700
password_encryption = scram-sha-256
log_min_error_statement = panic
max_connections = 200
EOF
}

ensure_role() {  # the role and database; a new password (and pgpass) only when the pgpass file is missing
    local created=0
    if [ ! -s "$pgpass" ]; then
        local password
        password="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        (umask 077 && printf '127.0.0.1:%s:%s:%s:%s\n' "$port" "$db" "$role" "$password" >"$pgpass.tmp")
        mv "$pgpass.tmp" "$pgpass"
        psql_admin <<EOF
SELECT format('CREATE ROLE %I LOGIN', '$role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role')
\gexec
ALTER ROLE $role PASSWORD '$password';
EOF
    else  # the port may have changed since the file was written
        sed -i -E "s/^127\.0\.0\.1:[0-9]+:/127.0.0.1:$port:/" "$pgpass"
    fi
    if [ "$(psql_admin -tA <<<"SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ]; then
        psql_admin <<<"CREATE DATABASE $db OWNER $role"
        created=1
    fi
    if [ "$created" = 1 ] && [ -s "$dump" ]; then
        echo "phaselab: restoring MLflow's database from $dump"
        PGPASSFILE="$pgpass" "$bin/pg_restore" -h 127.0.0.1 -p "$port" -U "$role" -d "$db" --no-owner \
            --exit-on-error "$dump"
    fi
}

uri() { echo "postgresql://$role@127.0.0.1:$port/$db"; }

start() {
    [ -f "$data/PG_VERSION" ] || init
    if ! running; then
        as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -o "-p $port" -w -t 120 start >/dev/null \
            || { tail -n 20 "$dir/server.log" >&2; die "PostgreSQL did not start"; }
    fi
    ensure_role
    uri >"$dir/uri"
    echo "phaselab: PostgreSQL at 127.0.0.1:$port (database $db, data $data, password in $pgpass)"
}

stop() {
    if running; then
        as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
        echo "phaselab: PostgreSQL stopped"
    fi
}

backup() {
    running || die "PostgreSQL is not running in $data"
    mkdir -p "$(dirname "$dump")"
    (umask 077 && PGPASSFILE="$pgpass" "$bin/pg_dump" -h 127.0.0.1 -p "$port" -U "$role" -Fc \
        -f "$dump.tmp" "$db")
    mv "$dump.tmp" "$dump"
    echo "phaselab: MLflow's database dumped to $dump"
}

bin="$(find_bin)"
case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) if running; then uri; else echo "not running" >&2; exit 1; fi ;;
    uri) uri ;;
    backup) backup ;;
    *) echo "usage: bash scripts/mlflow_db.sh start|stop|status|uri|backup" >&2; exit 2 ;;
esac
