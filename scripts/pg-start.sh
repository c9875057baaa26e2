#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for tests.
#
# usage: scripts/pg-start.sh DIR PORT
#
# The cluster lives in DIR/data, its unix socket in DIR and its log in
# DIR/postgres.log; it listens on 127.0.0.1:PORT only and trusts every local
# connection, so it must never hold anything that matters. The connection URL
# is printed as the last line of stdout; everything else goes to stderr so
# callers can capture the URL with $(...).
#
# If DIR/data already holds a cluster it is reused (handy for start/stop
# cycles); the port and other settings are rewritten on every start.
# Stop it with scripts/pg-stop.sh DIR.
set -euo pipefail

PG_USER=switchboard-pg

log() { printf 'pg-start: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ $# -ne 2 ]]; then
    echo "usage: $0 DIR PORT" >&2
    exit 2
fi
dir_arg=$1
port=$2
[[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "invalid port: $port"

# Find the newest installed PostgreSQL. We use the real binaries under
# /usr/lib/postgresql/<ver>/bin rather than Debian's pg_wrapper scripts (or any
# symlinks on PATH), which pick a version/cluster by their own rules.
find_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    if [[ -n $d && -x $d/initdb && -x $d/pg_ctl && -x $d/pg_isready ]]; then
        printf '%s\n' "$d"
    fi
}

bindir=$(find_bindir)
if [[ -z $bindir ]]; then
    # A fresh machine may not have PostgreSQL yet; installing needs root.
    if [[ $(id -u) -ne 0 ]]; then
        die "postgresql is not installed and we are not root; install debian's 'postgresql' package"
    fi
    log "postgresql not found, installing debian's postgresql package"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
    bindir=$(find_bindir)
    [[ -n $bindir ]] || die "postgresql installed but no initdb found under /usr/lib/postgresql/*/bin"
fi
log "using postgresql binaries in $bindir"

# Absolute path: the server runs with its own cwd, and the socket directory
# and log path must not depend on where we were started from.
mkdir -p -- "$dir_arg"
dir=$(cd -- "$dir_arg" && pwd -P)
data=$dir/data
logfile=$dir/postgres.log

# Unix socket paths are limited to ~107 bytes (sun_path).
sock=$dir/.s.PGSQL.$port
((${#sock} < 100)) || die "socket path too long ($sock); use a shorter DIR"

# initdb and postgres refuse to run as root. As root we run them as a
# dedicated unprivileged system user; otherwise as ourselves.
if [[ $(id -u) -eq 0 ]]; then
    if ! id -u "$PG_USER" >/dev/null 2>&1; then
        log "creating system user $PG_USER"
        # A parallel run may create the user at the same moment; only fail if
        # the user still does not exist afterwards.
        useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER" ||
            id -u "$PG_USER" >/dev/null 2>&1 ||
            die "could not create user $PG_USER"
    fi
    pg_uid=$(id -u "$PG_USER")
    pg_gid=$(id -g "$PG_USER")
    chown -R "$pg_uid:$pg_gid" -- "$dir"
    as_pg() {
        # cd into DIR so the server's cwd is readable by it, and point HOME
        # there too: root's HOME is not accessible to this user.
        (cd -- "$dir" && HOME=$dir setpriv --reuid="$pg_uid" --regid="$pg_gid" --init-groups -- "$@")
    }
    # The user must be able to reach DIR (every parent directory searchable).
    as_pg test -w "$dir" -a -x "$dir" ||
        die "$PG_USER cannot write to $dir (are its parent directories searchable by other users?)"
else
    as_pg() { (cd -- "$dir" && "$@"); }
fi

tail_log() {
    local f=$1
    if [[ -f $f ]]; then
        log "last lines of $f:"
        tail -n 40 -- "$f" >&2 || true
    fi
}

if [[ -f $data/PG_VERSION ]]; then
    log "reusing existing cluster in $data"
else
    log "initialising cluster in $data"
    initdb_log=$dir/initdb.log
    initdb_args=(-D "$data" -A trust -U postgres --encoding=UTF8)
    if ! as_pg "$bindir/initdb" "${initdb_args[@]}" --locale=C.UTF-8 >"$initdb_log" 2>&1; then
        # Some systems lack the C.UTF-8 locale; plain C works everywhere.
        log "initdb with locale c.utf-8 failed, retrying with locale c"
        rm -rf -- "$data"
        if ! as_pg "$bindir/initdb" "${initdb_args[@]}" --locale=C >"$initdb_log" 2>&1; then
            tail_log "$initdb_log"
            die "initdb failed"
        fi
    fi
    # Keep our settings in a separate file that is rewritten on every start,
    # so a reused cluster can move to another port.
    echo "include_if_exists = 'switchboard-test.conf'" >>"$data/postgresql.conf"
fi

# Test-only settings: durability is traded for speed (fsync and friends off),
# and enough connections for many tests running in parallel.
sql_quote() { printf "'%s'" "${1//\'/\'\'}"; }
cat >"$data/switchboard-test.conf" <<EOF
# written by scripts/pg-start.sh on every start; do not edit
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = $(sql_quote "$dir")
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 128MB
EOF
[[ $(id -u) -ne 0 ]] || chown "$pg_uid:$pg_gid" -- "$data/switchboard-test.conf"

log "starting server on 127.0.0.1:$port (log: $logfile)"
if ! as_pg "$bindir/pg_ctl" -D "$data" -l "$logfile" -w -t 60 start >&2; then
    tail_log "$logfile"
    die "pg_ctl start failed"
fi

# pg_ctl -w already waits, but check the TCP listener the tests will use.
ready=0
for _ in $(seq 1 60); do
    if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2; then
        ready=1
        break
    fi
    sleep 0.5
done
if ((ready == 0)); then
    tail_log "$logfile"
    die "server did not accept connections on 127.0.0.1:$port"
fi

log "server ready"
echo "postgres://postgres@127.0.0.1:$port/postgres"
