#!/usr/bin/env bash
# tracemill on one machine, no containers: infra/stack.sh up | down | status
#
#   up      PostgreSQL (SQLite when PostgreSQL is not installed), SeaweedFS S3 with the bucket (or
#           your S3: set TRACEMILL_S3_ENDPOINT_URL and its keys), `prefect server start`, the cpu and
#           gpu process pools, the blocks, the deployments of deployments/prefect.yaml and their
#           automations (deployments/automations.py), process workers (one on cpu, one per GPU on
#           gpu). Running it again starts what is not running and updates the rest.
#   down    stops every process `up` started; data (database, S3 objects) stays in $STACK_DIR.
#   status  what is running, where the UI is.
#
# Everything lives in $STACK_DIR (default ./stack in the repository root): logs/, pids/, the
# database, the S3 data, the generated credentials, and `env`, which a shell sources to use the
# `prefect` CLI against this server. Settings (environment, defaults in brackets):
#   STACK_DIR [./stack]   STACK_DB [postgres if installed, else sqlite]
#   GPU_COUNT [1]: the gpu pool's concurrency limit and its number of workers, worker N on GPU N
#   STACK_PREFECT_PORT [4200]  STACK_PG_PORT [5433]  STACK_S3_PORT [8333]
#   STACK_WEED_PORTS ["9333 8080 8888"] (master, volume, filer; each +10000 is its gRPC port)
#   TRACEMILL_S3_BUCKET [tracemill]  TRACEMILL_S3_ENDPOINT_URL, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY (own S3)
#   TRACEMILL_TEACHER_* and TRACEMILL_HUB_*: passed to `python -m blocks.bootstrap` as they are.
#   STACK_NOTIFY: a notification block (TYPE-SLUG/NAME) for deployments/automations.py --notify.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${STACK_BIN:-$ROOT/.venv/bin}"
STACK_DIR="$(mkdir -p "${STACK_DIR:-$ROOT/stack}" && cd "${STACK_DIR:-$ROOT/stack}" && pwd)"
LOGS="$STACK_DIR/logs"
PIDS="$STACK_DIR/pids"
PREFECT_PORT="${STACK_PREFECT_PORT:-4200}"
PG_PORT="${STACK_PG_PORT:-5433}"
S3_PORT="${STACK_S3_PORT:-8333}"
read -r WEED_MASTER WEED_VOLUME WEED_FILER <<<"${STACK_WEED_PORTS:-9333 8080 8888}"
BUCKET="${TRACEMILL_S3_BUCKET:-tracemill}"
API_URL="http://127.0.0.1:$PREFECT_PORT/api"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
[[ -x "$PG_BIN/initdb" ]] || PG_BIN="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"

say() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

database() {
  if [[ -n "${STACK_DB:-}" ]]; then echo "$STACK_DB"
  elif [[ -f "$STACK_DIR/postgres/PG_VERSION" || -x "$PG_BIN/initdb" ]]; then echo postgres
  else echo sqlite; fi
}

# The environment of every Prefect process of the stack; `up` writes it to $STACK_DIR/env as well.
client_env() {
  export PREFECT_API_URL="$API_URL" PREFECT_HOME="$STACK_DIR/prefect-home" PREFECT_SERVER_ANALYTICS_ENABLED=false
  export TRACEMILL_HOME="$ROOT" PATH="$BIN:$PATH"
}

alive() { [[ -f "$PIDS/$1.pid" ]] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

# start NAME CMD...: CMD in a session of its own (so `down` stops it with all its children), logging to
# logs/NAME.log, without the secrets that `python -m blocks.bootstrap` puts in blocks: flow runs load those.
start() {
  local name=$1; shift
  if alive "$name"; then say "$name already running (pid $(cat "$PIDS/$name.pid"))"; return; fi
  setsid env -u TRACEMILL_S3_ACCESS_KEY_ID -u TRACEMILL_S3_SECRET_ACCESS_KEY -u TRACEMILL_TEACHER_API_KEY \
    -u TRACEMILL_HUB_TOKEN "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
  say "$name started (pid $!, log $LOGS/$name.log)"
}

# wait_for NAME SECONDS CMD...: until CMD succeeds, failing early when NAME's process has exited.
wait_for() {
  local name=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || die "$name exited: see $LOGS/$name.log"$'\n'"$(tail -n 20 "$LOGS/$name.log")"
    ((SECONDS < deadline)) || die "$name did not come up within ${seconds}s: see $LOGS/$name.log"
    sleep 1
  done
}

# stop NAME...: SIGTERM to each one's process group, SIGKILL to the groups still there after 30 s.
stop() {
  local name pid running pids=()
  for name in "$@"; do
    if alive "$name"; then
      pids+=("$(cat "$PIDS/$name.pid")")
      kill -TERM -- "-${pids[-1]}" 2>/dev/null || kill -TERM "${pids[-1]}"
      say "stopping $name"
    fi
    rm -f "$PIDS/$name.pid"
  done
  for _ in $(seq 30); do
    running=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=1; done
    ((running)) || break
    sleep 1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}

# PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user of the package.
pg() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postgres_up() {
  local data="$STACK_DIR/postgres"
  [[ -x "$PG_BIN/initdb" ]] || die "STACK_DB=postgres but initdb is not installed (Debian: apt-get install postgresql)"
  if [[ ! -f "$data/PG_VERSION" ]]; then
    mkdir -p "$data"
    head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STACK_DIR/postgres.password"
    chmod 600 "$STACK_DIR/postgres.password"
    if [[ $EUID -eq 0 ]]; then
      chown postgres "$data" && cp "$STACK_DIR/postgres.password" "$data.pw" && chown postgres "$data.pw"
      runuser -u postgres -- test -w "$data" ||
        die "user postgres cannot reach $data: make its parent folders searchable (chmod o+x) or run as another user"
    else
      cp "$STACK_DIR/postgres.password" "$data.pw"
    fi
    pg "$PG_BIN/initdb" -D "$data" -U prefect --pwfile="$data.pw" --auth-local=trust --auth-host=scram-sha-256 \
      >>"$LOGS/postgres.log" 2>&1 || die "initdb failed: see $LOGS/postgres.log"
    rm -f "$data.pw"
  fi
  if ! pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    # Its log goes to logs/ too; it listens on loopback and on a socket inside its data folder.
    touch "$LOGS/postgres.log"
    [[ $EUID -ne 0 ]] || chown postgres "$LOGS/postgres.log"
    pg "$PG_BIN/pg_ctl" -D "$data" -l "$LOGS/postgres.log" -w -t 60 \
      -o "-p $PG_PORT -k $data -c listen_addresses=127.0.0.1" start >/dev/null || die "PostgreSQL did not start: see $LOGS/postgres.log"
    say "postgres started (port $PG_PORT, log $LOGS/postgres.log)"
  else
    say "postgres already running"
  fi
  head -n 1 "$data/postmaster.pid" >"$PIDS/postgres.pid"
  pg "$PG_BIN/psql" -h "$data" -p "$PG_PORT" -U prefect -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='prefect'" |
    grep -q 1 || pg "$PG_BIN/createdb" -h "$data" -p "$PG_PORT" -U prefect prefect
  DATABASE_URL="postgresql+asyncpg://prefect:$(cat "$STACK_DIR/postgres.password")@127.0.0.1:$PG_PORT/prefect"
}

postgres_down() {
  local data="$STACK_DIR/postgres"
  if [[ -f "$data/postmaster.pid" ]] && [[ -x "$PG_BIN/pg_ctl" ]]; then
    pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null && say "postgres stopped"
  fi
  rm -f "$PIDS/postgres.pid"
}

# SeaweedFS (master, volume, filer and S3 gateway in one process) with keys generated on first `up`.
seaweedfs_up() {
  local config="$STACK_DIR/s3.json"
  if [[ ! -f "$config" ]]; then
    local key secret
    key="$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
    secret="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
    (umask 077 && printf '{"identities": [{"name": "tracemill", "credentials": [{"accessKey": "%s", "secretKey": "%s"}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}\n' \
      "$key" "$secret" >"$config")
  fi
  mkdir -p "$STACK_DIR/seaweedfs"
  start seaweedfs "$BIN/weed" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$STACK_DIR/seaweedfs" \
    -master.port="$WEED_MASTER" -volume.port="$WEED_VOLUME" -filer.port="$WEED_FILER" \
    -s3 -s3.port="$S3_PORT" -s3.config="$config" -s3.port.iceberg=0 -s3.port.lance=0 \
    -master.volumeSizeLimitMB=1024 -volume.max=0
  export TRACEMILL_S3_ENDPOINT_URL="http://127.0.0.1:$S3_PORT"
  TRACEMILL_S3_ACCESS_KEY_ID="$("$BIN/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["identities"][0]["credentials"][0]["accessKey"])' "$config")"
  TRACEMILL_S3_SECRET_ACCESS_KEY="$("$BIN/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["identities"][0]["credentials"][0]["secretKey"])' "$config")"
  export TRACEMILL_S3_ACCESS_KEY_ID TRACEMILL_S3_SECRET_ACCESS_KEY
  wait_for seaweedfs 90 curl -s -o /dev/null "$TRACEMILL_S3_ENDPOINT_URL"
}

# The bucket, on SeaweedFS or any S3; the gateway answers before its filer is ready, hence the retries.
make_bucket() {
  "$BIN/python" - "$BUCKET" <<'EOF'
import os, sys, time
import s3fs

fs = s3fs.S3FileSystem(key=os.environ["TRACEMILL_S3_ACCESS_KEY_ID"], secret=os.environ["TRACEMILL_S3_SECRET_ACCESS_KEY"],
                       client_kwargs={"endpoint_url": os.environ["TRACEMILL_S3_ENDPOINT_URL"]})
deadline = time.monotonic() + 60
while True:
    try:
        if not fs.exists(sys.argv[1]):
            fs.mkdir(sys.argv[1])
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(1)
EOF
  say "bucket s3://$BUCKET ready at $TRACEMILL_S3_ENDPOINT_URL"
}

up() {
  mkdir -p "$LOGS" "$PIDS" "$STACK_DIR/prefect-home"
  chmod 711 "$STACK_DIR"  # secrets are 600 each; the postgres user (root runs) must reach postgres/ and logs/
  [[ -x "$BIN/prefect" ]] || die "$BIN/prefect not found: run \`make setup\` first (or set STACK_BIN)"
  client_env
  local db; db="$(database)"
  DATABASE_URL=""  # SQLite in $PREFECT_HOME
  case "$db" in
    postgres) postgres_up ;;
    sqlite) say "database: SQLite in $PREFECT_HOME" ;;
    *) die "STACK_DB must be postgres or sqlite, not $db" ;;
  esac
  if [[ -n "${TRACEMILL_S3_ENDPOINT_URL:-}" ]]; then
    say "S3: $TRACEMILL_S3_ENDPOINT_URL (yours; no SeaweedFS)"
  else
    seaweedfs_up
  fi
  make_bucket

  # The database URL (with its password) goes to the server only; everything else talks to the API.
  (
    [[ -z "$DATABASE_URL" ]] || export PREFECT_API_DATABASE_CONNECTION_URL="$DATABASE_URL"
    PREFECT_UI_API_URL="$API_URL" start server "$BIN/prefect" server start --host 127.0.0.1 --port "$PREFECT_PORT"
  )
  wait_for server 240 curl -sf "$API_URL/health"

  prefect work-pool create cpu --type process --base-job-template "$ROOT/infra/work-pools/cpu-process.json" --overwrite >/dev/null
  prefect work-pool create gpu --type process --base-job-template "$ROOT/infra/work-pools/gpu-process.json" --overwrite >/dev/null
  prefect work-pool set-concurrency-limit gpu "${GPU_COUNT:-1}" >/dev/null
  say "pools cpu and gpu (limit ${GPU_COUNT:-1})"
  prefect block register -m blocks >/dev/null
  (cd "$ROOT" && python -m blocks.bootstrap) | sed 's/^/stack: /'
  (cd "$ROOT" && prefect --no-prompt deploy --all --prefect-file deployments/prefect.yaml >"$LOGS/deploy.log" 2>&1) ||
    die "prefect deploy failed: see $LOGS/deploy.log"
  say "deployments of deployments/prefect.yaml created"
  # The automations shipped with the deployments; STACK_NOTIFY (TYPE-SLUG/NAME of a notification block) adds alerts.
  (cd "$ROOT" && python deployments/automations.py ${STACK_NOTIFY:+--notify "$STACK_NOTIFY"}) | sed 's/^/stack: /'

  start worker-cpu "$BIN/prefect" worker start --pool cpu --type process --name "$(hostname)-cpu"
  # One gpu worker per GPU, each pinning its flow runs to its GPU (the pool's gpu_devices left empty).
  for ((gpu = 0; gpu < ${GPU_COUNT:-1}; gpu++)); do
    CUDA_VISIBLE_DEVICES=$gpu start "worker-gpu$gpu" \
      "$BIN/prefect" worker start --pool gpu --type process --name "$(hostname)-gpu$gpu"
  done
  cat >"$STACK_DIR/env" <<EOF
# source this file to use the prefect CLI against the stack of $STACK_DIR
export PREFECT_API_URL=$API_URL PREFECT_HOME=$PREFECT_HOME TRACEMILL_HOME=$ROOT
EOF
  say "up: UI http://127.0.0.1:$PREFECT_PORT, database $db; \`source $STACK_DIR/env\` for the prefect CLI"
}

down() {
  local workers=()
  for pid_file in "$PIDS"/worker-*.pid; do [[ ! -e "$pid_file" ]] || workers+=("$(basename "$pid_file" .pid)"); done
  stop "${workers[@]}"  # first, so that they report their flow runs' ends to the server
  stop server seaweedfs
  postgres_down
  say "down (data kept in $STACK_DIR)"
}

status() {
  local pid_file name state=0
  for pid_file in "$PIDS"/*.pid; do
    [[ -e "$pid_file" ]] || continue
    name="$(basename "$pid_file" .pid)"
    if alive "$name"; then say "$name running (pid $(cat "$pid_file"))"; else say "$name NOT running (see $LOGS/$name.log)"; state=1; fi
  done
  if curl -sf "$API_URL/health" >/dev/null 2>&1; then say "UI http://127.0.0.1:$PREFECT_PORT"; else say "server not answering"; state=1; fi
  return "$state"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
