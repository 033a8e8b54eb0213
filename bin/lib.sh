# Shared set-up for bin/demo and bin/test (sourced, not run).
#
# - finds a Python >= 3.11 and keeps .venv in step with pyproject.toml;
# - picks PostgreSQL: $DATABASE_URL, else a server on 127.0.0.1:5432, else the local cluster
#   started with pg_ctlcluster, else an embedded PostgreSQL 16 from the pgserver wheel;
# - picks Redis: $REDIS_URL, else a server on 127.0.0.1:6379, else redis-server started here.
# PORTAL_SERVICES=embedded skips the look-around and uses the embedded PostgreSQL (and bin/demo
# the file-system broker) even where servers are running.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.demo"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
mkdir -p "$STATE"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

python_find() {
  local candidate
  for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "Python 3.11 or newer is required (set PYTHON=/path/to/python3)." >&2
  return 1
}

pip_quiet() { # pip, without the notes about this machine's local package folders
  local status
  set +e
  "$PY" -m pip --quiet --disable-pip-version-check "$@" 2>&1 |
    grep -vE "Location 'file:|BuildBackendWarning|^\s*(!!|\*+|Please be careful|name as your|with strategy)|^\s*$"
  status="${PIPESTATUS[0]}"
  set -e
  return "$status"
}

venv_create() { # the virtual environment with psycopg only: enough to check the database first
  if [ ! -x "$PY" ]; then
    log "Creating virtual environment in .venv"
    "$(python_find)" -m venv "$VENV"
  fi
  if ! "$PY" -c 'import psycopg' 2>/dev/null; then
    # The same version range as pyproject.toml's, read from it (one place for the pin).
    pip_quiet install "$("$PY" - "$ROOT/pyproject.toml" <<'PYTHON'
import sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
print(next(d for d in deps if d.startswith("psycopg")))
PYTHON
)"
  fi
}

venv_ensure() {
  local stamp want
  venv_create
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  stamp="$VENV/.installed"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "Installing Factory Portal and its dependencies"
    pip_quiet install --upgrade pip
    pip_quiet install -e "$ROOT[dev]"
    echo "$want" >"$stamp"
  fi
}

tcp_open() { # host port
  "$PY" - "$1" "$2" <<'EOF'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
EOF
}

wait_tcp() { # host port seconds
  local i
  for ((i = 0; i < $3 * 4; i++)); do
    tcp_open "$1" "$2" && return 0
    sleep 0.25
  done
  return 1
}

postgres_ensure() { # sets DATABASE_URL; checks (or creates) the database before any slow install
  local db="${1:-factory_portal}"
  venv_create
  if [ -n "${DATABASE_URL:-}" ]; then
    log "PostgreSQL: using \$DATABASE_URL"
    "$PY" "$ROOT/bin/database_ensure.py" "$DATABASE_URL" || exit 1
    return 0
  fi
  if [ "${PORTAL_SERVICES:-}" = embedded ]; then
    postgres_embedded "$db"
    return 0
  fi
  if ! tcp_open 127.0.0.1 5432 && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    log "PostgreSQL: starting the local cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start \
      >/dev/null 2>&1 || true
    wait_tcp 127.0.0.1 5432 15 || true
  fi
  if tcp_open 127.0.0.1 5432; then
    log "PostgreSQL: using the server on 127.0.0.1:5432"
    export DATABASE_URL="postgres://${PGUSER:-postgres}@127.0.0.1:5432/$db"
    "$PY" "$ROOT/bin/database_ensure.py" "$DATABASE_URL" || exit 1
  else
    postgres_embedded "$db"
  fi
}

postgres_embedded() { # db
  venv_ensure # pgserver comes with the project's dependencies
  log "PostgreSQL: starting the embedded server (pgserver) in .demo/pgdata"
  DATABASE_URL="$("$PY" "$ROOT/bin/embedded_postgres.py" "$STATE/pgdata" "$1")"
  export DATABASE_URL
}

redis_ensure() { # [db] sets REDIS_URL; returns 1 when no Redis can be had
  local db="${1:-0}"
  if [ -n "${REDIS_URL:-}" ]; then
    log "Redis: using \$REDIS_URL"
    return 0
  fi
  if ! tcp_open 127.0.0.1 6379 && command -v redis-server >/dev/null 2>&1; then
    log "Redis: starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir "$STATE" --logfile "$STATE/redis.log" >/dev/null
    wait_tcp 127.0.0.1 6379 10 || true
  fi
  if tcp_open 127.0.0.1 6379; then
    log "Redis: using the server on 127.0.0.1:6379"
    export REDIS_URL="redis://127.0.0.1:6379/$db"
    return 0
  fi
  return 1
}

browser_ensure() { # Debian's Chromium and chromedriver for the browser tests (never a downloaded one)
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "Installing Debian's chromium and chromium-driver for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      chromium chromium-driver >/dev/null) || log "could not install Chromium: browser tests skip"
  else
    log "No Chromium here (apt-get install chromium chromium-driver): browser tests skip"
  fi
}
