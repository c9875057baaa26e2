#!/usr/bin/env bash
# Stop the mail servers started with scripts/mail-start.sh.
#
# usage: scripts/mail-stop.sh DIR
#
# Only the processes whose pids DIR records are touched (never kill by
# process name: other servers may be running on this machine): dovecot's
# master from DIR/run/master.pid, together with the processes it started
# (its process group), and the SMTP server from DIR/smtp.pid. Servers that
# are already stopped, or a DIR without them, are not an error.
set -euo pipefail

log() { printf 'mail-stop: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ $# -ne 1 ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1

# True while process $1 runs. A zombie does not count: it has exited, and
# whether it is reaped soon depends on the machine's init, not on us.
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# Whether pid $1 is dovecot's master or our SMTP server: a pid file may name
# a pid since reused by another program, which we must not touch.
is_dovecot() { [[ $(cat "/proc/$1/comm" 2>/dev/null) == dovecot ]]; }
is_sink() {
    local cmdline
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
    [[ $cmdline == *smtp-sink.py* ]]
}

# True while any (non-zombie) process of process group $1 runs.
group_alive() {
    ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# Wait up to $2 tenths of a second for the command "$3..." to turn false.
wait_gone() {
    local tenths=$1
    shift
    for _ in $(seq 1 "$tenths"); do
        "$@" || return 0
        sleep 0.1
    done
    ! "$@"
}

failed=0

# Process group of pid $1 (field 5 of /proc/PID/stat).
pgid_of() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    read -r _ _ _ pgid _ <<<"$stat"
    printf '%s\n' "$pgid"
}

# Dovecot. Its master makes itself a session (and process group) leader when
# it goes to the background, so its pid is also the group of every dovecot
# process.
pidfile=$dir/run/master.pid
if [[ -f $pidfile ]]; then
    pid=$(<"$pidfile")
    if [[ $pid =~ ^[0-9]+$ ]] && is_dovecot "$pid"; then
        log "stopping dovecot (pid $pid)"
        # SIGTERM to the master alone takes ~1.1 s (it waits for its
        # children to go); to the whole group ~0.1 s. Nothing in it needs a
        # clean shutdown: the data is thrown away.
        if [[ $(pgid_of "$pid") == "$pid" ]]; then
            kill -TERM -- "-$pid" 2>/dev/null || true
        else
            kill -TERM "$pid" 2>/dev/null || true
        fi
        if ! wait_gone 100 alive "$pid"; then
            log "dovecot did not exit within 10 s, killing it"
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone 20 alive "$pid" || true
        fi
    else
        log "dovecot (pid file $pidfile) is not running"
    fi
    # Left-over children (e.g. an imap process still finishing) of that
    # group. Only when the master itself is gone: then nothing reuses the
    # group id, so the group holds only dovecot's processes.
    if [[ $pid =~ ^[0-9]+$ ]] && ! alive "$pid" && group_alive "$pid"; then
        kill -TERM -- "-$pid" 2>/dev/null || true
        if ! wait_gone 50 group_alive "$pid"; then
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
    fi
    if alive "$pid" && is_dovecot "$pid"; then
        log "error: could not stop dovecot (pid $pid)"
        failed=1
    else
        rm -f -- "$pidfile"
    fi
else
    log "no dovecot pid file in $dir/run, dovecot not running"
fi

# The SMTP server.
pidfile=$dir/smtp.pid
if [[ -f $pidfile ]]; then
    pid=$(<"$pidfile")
    if [[ $pid =~ ^[0-9]+$ ]] && is_sink "$pid"; then
        log "stopping the smtp server (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_gone 100 alive "$pid"; then
            log "the smtp server did not exit within 10 s, killing it"
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone 20 alive "$pid" || true
        fi
    else
        log "the smtp server (pid file $pidfile) is not running"
    fi
    if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && is_sink "$pid"; then
        log "error: could not stop the smtp server (pid $pid)"
        failed=1
    else
        rm -f -- "$pidfile"
    fi
else
    log "no $pidfile, smtp server not running"
fi

((!failed)) || die "some servers in $dir are still running"
log "mail servers in $dir stopped"
