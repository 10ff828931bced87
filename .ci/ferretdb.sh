#!/usr/bin/env bash
# Throw-away FerretDB v1 servers (the MongoDB wire protocol) for CI, `npm run bench` and
# `npm run test:mongo`, on either of its backends:
#
#   .ci/ferretdb.sh start sqlite     DIR PORT   FerretDB on SQLite files in DIR
#   .ci/ferretdb.sh start postgresql DIR PORT   FerretDB on a PostgreSQL cluster of its own in DIR
#   .ci/ferretdb.sh stop DIR                    stops what `start` started in DIR, removes DIR
#
# `start` prints the MONGODB_URI (mongodb://127.0.0.1:PORT/) once the server answers, and
# leaves the processes running. DIR must not exist or be empty. FerretDB listens on
# 127.0.0.1 only. The PostgreSQL cluster listens on no TCP port at all, only on a Unix socket
# in DIR (trust authentication, local connections only), so it can clash with no other
# cluster, a system one on 5432 included. It is initialised as the `postgres` user when run
# as root (PostgreSQL refuses to run as root), as the caller otherwise.
#
# Durability is switched off in that cluster (fsync, synchronous_commit, full_page_writes):
# it holds test data that is deleted with DIR, and the point of it is to measure our code,
# not the disk. FERRETDB (the binary; default .ci/cache/ferretdb-v1.24.2, which .ci/run
# builds) and PG_BINDIR (default: the newest /usr/lib/postgresql/*/bin) may be set.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FERRETDB=${FERRETDB:-"$ROOT/.ci/cache/ferretdb-v1.24.2"}

die() { echo "ferretdb.sh: $*" >&2; exit 1; }

pg_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] || die "PostgreSQL not found (apt-get install postgresql, or set PG_BINDIR)"
  echo "$d"
}

# Runs a PostgreSQL tool as the cluster's owner.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

wait_for_port() { # PORT PID LOG
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then cat "$3" >&2; die "FerretDB exited at start"; fi
    sleep 0.05
  done
  cat "$3" >&2
  die "FerretDB did not listen on 127.0.0.1:$1 within 10 s"
}

start() { # BACKEND DIR PORT
  local backend=$1 dir=$2 port=$3
  [ -x "$FERRETDB" ] || die "no FerretDB binary at $FERRETDB (.ci/run builds it)"
  # Another server there would answer for the one started here.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "127.0.0.1:$port is in use"; fi
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  dir=$(cd "$dir" && pwd)
  mkdir -p "$dir/ferretdb"
  local args=()
  case "$backend" in
    sqlite)
      mkdir -p "$dir/sqlite"
      args=(--handler=sqlite --sqlite-url="file:$dir/sqlite/")
      ;;
    postgresql)
      local bin
      bin=$(pg_bindir)
      mkdir -p "$dir/pg" "$dir/pgsock"
      if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir/pg" "$dir/pgsock"; chmod 755 "$dir"; fi
      as_pg "$bin/initdb" -D "$dir/pg" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
      cat >>"$dir/pg/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir/pgsock'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
      printf 'local all all trust\n' >"$dir/pg/pg_hba.conf"
      as_pg "$bin/pg_ctl" -D "$dir/pg" -l "$dir/pg/server.log" -w -t 30 start >/dev/null \
        || { cat "$dir/pg/server.log" >&2; die "PostgreSQL failed to start"; }
      as_pg "$bin/createdb" -h "$dir/pgsock" -U postgres ferretdb
      args=(--handler=postgresql --postgresql-url="postgres://postgres@/ferretdb?host=$dir/pgsock")
      ;;
    *) die "unknown backend '$backend' (sqlite or postgresql)" ;;
  esac
  "$FERRETDB" "${args[@]}" --state-dir="$dir/ferretdb" --listen-addr="127.0.0.1:$port" --debug-addr=- \
    --telemetry=disable --log-level=warn </dev/null >"$dir/ferretdb.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/ferretdb.pid"
  echo "$backend" >"$dir/backend"
  wait_for_port "$port" "$pid" "$dir/ferretdb.log"
  echo "mongodb://127.0.0.1:$port/"
}

stop() { # DIR
  local dir=$1
  [ -d "$dir" ] || return 0
  if [ -s "$dir/ferretdb.pid" ]; then
    local pid
    pid=$(cat "$dir/ferretdb.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  fi
  if [ -f "$dir/pg/PG_VERSION" ]; then
    as_pg "$(pg_bindir)/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) [ $# -eq 4 ] || die "usage: $0 start sqlite|postgresql DIR PORT"; start "$2" "$3" "$4" ;;
  stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
  *) die "usage: $0 start sqlite|postgresql DIR PORT | stop DIR" ;;
esac
