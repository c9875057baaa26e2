#!/usr/bin/env bash
# Stop a throwaway PostgreSQL server started with scripts/pg-start.sh.
#
# usage: scripts/pg-stop.sh DIR
#
# Uses pg_ctl on DIR/data, so only that server is touched (never kill by
# process name: other servers may be running on this machine). A server that
# is already stopped, or a DIR without a cluster, is not an error.
set -euo pipefail

log() { printf 'pg-stop: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ $# -ne 1 ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
data=$1/data

if [[ ! -f $data/PG_VERSION ]]; then
    log "no cluster in $data, nothing to stop"
    exit 0
fi

# Use the binaries of the version that created the cluster, falling back to
# the newest installed one.
ver=$(<"$data/PG_VERSION")
bindir=/usr/lib/postgresql/$ver/bin
if [[ ! -x $bindir/pg_ctl ]]; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    [[ -n $bindir && -x $bindir/pg_ctl ]] || die "no pg_ctl found under /usr/lib/postgresql/*/bin"
fi

# pg_ctl refuses to run as root: run it as the owner of the data directory
# (the unprivileged user pg-start.sh used).
if [[ $(id -u) -eq 0 ]]; then
    owner_uid=$(stat -c %u -- "$data")
    owner_gid=$(stat -c %g -- "$data")
    [[ $owner_uid -ne 0 ]] || die "$data is owned by root; it was not created by pg-start.sh"
    as_pg() {
        (cd / && setpriv --reuid="$owner_uid" --regid="$owner_gid" --init-groups -- "$@")
    }
else
    as_pg() { "$@"; }
fi

# pg_ctl status: 0 = running, 3 = not running, 4 = no accessible data dir.
status=0
as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1 || status=$?
if ((status != 0)); then
    log "server in $data is not running"
    exit 0
fi

# Immediate mode: no checkpoint, the data is thrown away anyway. -w waits
# until the postmaster has exited and removed its pid file.
if ! as_pg "$bindir/pg_ctl" -D "$data" -m immediate -w -t 60 stop >&2; then
    # It may have exited between status and stop; only fail if still up.
    if as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        die "could not stop the server in $data"
    fi
fi
log "server in $data stopped"
