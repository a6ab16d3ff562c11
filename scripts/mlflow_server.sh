#!/usr/bin/env bash
# The cluster's MLflow tracking server, run on the Ray head by ray_cluster*.yaml (or by hand):
#   bash scripts/mlflow_server.sh start|stop|status
# It binds to the node's private address only (never 0.0.0.0): trials on the workers reach it over the
# cluster network, people reach it through an SSH tunnel (see the README). Settings (environment):
#   MLFLOW_HOST      address to bind (default: the first private address of this node, `hostname -I`)
#   MLFLOW_PORT      port (default 5000)
#   PHASELAB_SHARED  shared storage mounted on every node (default /mnt/shared)
#   PHASELAB_MLFLOW_DB_URI        the runs database (MLFLOW_BACKEND_STORE_URI is read as well):
#       local              PostgreSQL on this node (scripts/mlflow_db.sh: local disk, 127.0.0.1 only,
#                          password generated here in a 0600 pgpass file); what the cluster YAMLs use
#       postgresql://USER@HOST:PORT/DB   a managed database (e.g. RDS); its password in a pgpass line
#                          (HOST:PORT:DB:USER:PASSWORD) in $PGPASSFILE or $MLFLOW_STATE_DIR/pgpass (0600),
#                          never in this URI or any file in the repository
#       unset              SQLite on the shared storage: one machine only (a laptop); SQLite must not
#                          live on NFS/EFS, and concurrent trials meet "database is locked" there
#   MLFLOW_ARTIFACTS_DESTINATION  artifact store (default $PHASELAB_SHARED/mlflow/artifacts; s3://... works)
#   MLFLOW_STATE_DIR              pid file, log and tracking_uri file (default ~/.phaselab-mlflow)
#   MLFLOW_WORKERS                uvicorn worker processes (default 4)
# The database URI reaches MLflow through the environment, not its command line, and is printed with
# any password masked.
set -euo pipefail

shared="${PHASELAB_SHARED:-/mnt/shared}"
host="${MLFLOW_HOST:-$(hostname -I 2>/dev/null | awk '{print $1}')}"
host="${host:-127.0.0.1}"
port="${MLFLOW_PORT:-5000}"
workers="${MLFLOW_WORKERS:-4}"
state="${MLFLOW_STATE_DIR:-$HOME/.phaselab-mlflow}"
backend="${PHASELAB_MLFLOW_DB_URI:-${MLFLOW_BACKEND_STORE_URI:-}}"
artifacts="${MLFLOW_ARTIFACTS_DESTINATION:-$shared/mlflow/artifacts}"
pidfile="$state/server.pid"
url="http://$host:$port"

here="$(cd "$(dirname "$0")" && pwd)"

masked() { sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#' <<<"$1"; }  # a URI's password, if any, as ***

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

stop() {
    if running; then
        # The server runs in its own session: signal its whole process group (uvicorn workers too).
        kill -TERM -- "-$(cat "$pidfile")" 2>/dev/null || true
        for _ in $(seq 50); do running || break; sleep 0.2; done
        if running; then kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null || true; fi
        echo "phaselab: MLflow server stopped"
    fi
    rm -f "$pidfile"
}

healthy() {
    python - "$url/health" <<'EOF' 2>/dev/null
import sys
import urllib.request

with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
    sys.exit(0 if response.status == 200 else 1)
EOF
}

database() {  # sets $backend (and PGPASSFILE) from the settings above
    case "$backend" in
        "")
            backend="sqlite:///$shared/mlflow/mlflow.db"
            mkdir -p "$shared/mlflow"
            echo "phaselab: warning: MLflow's runs database is SQLite ($shared/mlflow/mlflow.db): for one" \
                "machine only, never on NFS/EFS; on a cluster set PHASELAB_MLFLOW_DB_URI=local (PostgreSQL)" >&2
            ;;
        local)
            bash "$here/mlflow_db.sh" start
            backend="$(bash "$here/mlflow_db.sh" uri)"
            export PGPASSFILE="${PHASELAB_PG_DIR:-$HOME/.phaselab-mlflow/postgres}/pgpass"
            ;;
        sqlite:///*) mkdir -p "$(dirname "${backend#sqlite:///}")" ;;
        postgresql*)
            if [ -z "${PGPASSFILE:-}" ] && [ -f "$state/pgpass" ]; then export PGPASSFILE="$state/pgpass"; fi
            if [ -n "${PGPASSFILE:-}" ] && [ "$(stat -c %a "$PGPASSFILE")" != 600 ]; then
                echo "phaselab: $PGPASSFILE must be private (chmod 600): libpq ignores it otherwise" >&2
                return 1
            fi
            ;;
    esac
}

start() {
    stop  # `ray up` on a running cluster reruns the head's start commands: restart cleanly
    mkdir -p "$state"
    database
    case "$artifacts" in *://*) ;; *) mkdir -p "$artifacts" ;; esac
    export MLFLOW_DISABLE_TELEMETRY=true MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
    export MLFLOW_BACKEND_STORE_URI="$backend"  # read by `mlflow server`: no password in `ps`
    setsid nohup mlflow server \
        --artifacts-destination "$artifacts" \
        --host "$host" --port "$port" --workers "$workers" \
        >"$state/server.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 120); do
        if healthy; then
            echo "$url" >"$state/tracking_uri"
            echo "phaselab: MLflow server at $url (database $(masked "$backend"), artifacts $artifacts, log $state/server.log)"
            return 0
        fi
        if ! running; then break; fi
        sleep 0.5
    done
    echo "phaselab: MLflow server did not come up; last lines of $state/server.log:" >&2
    tail -n 20 "$state/server.log" >&2 || true
    stop
    return 1
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) if running && healthy; then echo "$url"; else echo "not running" >&2; exit 1; fi ;;
    *) echo "usage: bash scripts/mlflow_server.sh start|stop|status" >&2; exit 2 ;;
esac
