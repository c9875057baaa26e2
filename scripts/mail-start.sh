#!/usr/bin/env bash
# Start throwaway mail servers for tests: dovecot (IMAP + LMTP) and a small
# SMTP server (scripts/smtp-sink.py) that keeps a raw copy of every message
# and hands it to dovecot over LMTP.
#
# usage: scripts/mail-start.sh DIR IMAP_PORT LMTP_PORT SMTP_PORT
#
# Everything lives in DIR and listens on 127.0.0.1 only, without TLS and with
# cleartext passwords, so it must never hold anything that matters:
#   DIR/users.d/NAME   user NAME, a file holding the one line
#                      `NAME:{PLAIN}password::::::` (NAME in lower case);
#                      tests add users by creating such files while the
#                      servers run (readable by the servers: default
#                      permissions are fine). One file per user, not one file
#                      for all: dovecot re-reads a passwd-file at most once a
#                      second, so a line appended to a shared file can stay
#                      unseen for up to a second, while a new file is read at
#                      its first lookup (changing or removing an existing
#                      user's file can still take up to a second to be seen)
#   DIR/mail/NAME/     each user's home, mail in DIR/mail/NAME/Maildir
#   DIR/smtp-outbox/   N.eml, the raw bytes of the Nth message received over
#                      SMTP (only complete files ever appear there)
#   DIR/smtp-envelopes/ N.json, its envelope: {"mail_from": ..., "rcpt_tos":
#                      [...]} (the only record of Bcc recipients; written
#                      before N.eml appears)
#   DIR/dovecot.conf, DIR/dovecot.log, DIR/smtp.log, DIR/smtp.pid
#
# The last lines of stdout are `export` lines for the tests
# (SWITCHBOARD_TEST_IMAP, SWITCHBOARD_TEST_SMTP, SWITCHBOARD_TEST_MAIL_DIR);
# everything else goes to stderr, so callers can capture them with $(...) and
# eval them. A DIR from an earlier run is reused (users, mail and outbox are
# kept; the config is rewritten). Stop with scripts/mail-stop.sh DIR.
set -euo pipefail

MAIL_USER=switchboard-mail

log() { printf 'mail-start: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ $# -ne 4 ]]; then
    echo "usage: $0 DIR IMAP_PORT LMTP_PORT SMTP_PORT" >&2
    exit 2
fi
dir_arg=$1
imap_port=$2
lmtp_port=$3
smtp_port=$4
for p in "$imap_port" "$lmtp_port" "$smtp_port"; do
    [[ $p =~ ^[0-9]+$ ]] && ((p > 0 && p < 65536)) || die "invalid port: $p"
done
[[ $imap_port != "$lmtp_port" && $imap_port != "$smtp_port" && $lmtp_port != "$smtp_port" ]] ||
    die "the three ports must differ"

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
sink=$here/smtp-sink.py
[[ -f $sink ]] || die "$sink not found"

# Debian's python, not whatever python3 comes first on PATH (a pyenv one
# there lacks Debian's aiosmtpd package).
PYTHON=/usr/bin/python3

# Install what is missing. We check files rather than package names so a
# machine where they came some other way works too.
dovecot_bin=/usr/sbin/dovecot
missing=()
[[ -x $dovecot_bin && -x /usr/lib/dovecot/imap ]] || missing+=(dovecot-imapd)
[[ -x /usr/lib/dovecot/lmtp ]] || missing+=(dovecot-lmtpd)
if ! [[ -x $PYTHON ]] || ! "$PYTHON" -c 'import aiosmtpd' 2>/dev/null; then
    missing+=(python3-aiosmtpd)
fi
if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] ||
        die "missing ${missing[*]} and we are not root; install debian's ${missing[*]} packages"
    log "installing ${missing[*]}"
    apt-get update >&2
    # Installing starts no daemon here (no init system); we run our own.
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
    [[ -x $dovecot_bin && -x /usr/lib/dovecot/imap && -x /usr/lib/dovecot/lmtp ]] ||
        die "dovecot installed but its binaries are not where expected"
    "$PYTHON" -c 'import aiosmtpd' || die "python3-aiosmtpd installed but $PYTHON cannot import it"
fi

# The config below uses dovecot 2.3 names (2.4 renamed or reshaped many of
# them: disable_plaintext_auth, mail_location, passdb/userdb args, %n ...).
dovecot_version=$("$dovecot_bin" --version 2>/dev/null | awk '{print $1}')
[[ $dovecot_version == 2.3.* ]] ||
    die "dovecot $dovecot_version found; this script writes a dovecot 2.3 config"
log "using dovecot $dovecot_version"

# Absolute paths: dovecot and the SMTP server run with their own cwd.
mkdir -p -- "$dir_arg"
dir=$(cd -- "$dir_arg" && pwd -P)
conf=$dir/dovecot.conf
base=$dir/run
users=$dir/users.d
outbox=$dir/smtp-outbox
smtp_pidfile=$dir/smtp.pid
# The path goes unquoted into dovecot's config, where blanks, quotes, '#' and
# '%' (variables) would change its meaning.
[[ $dir =~ ^[A-Za-z0-9/._+-]+$ ]] || die "unsupported characters in $dir; use a plain path"

# True while process $1 runs (a zombie has exited: it does not count).
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

# Servers of an earlier start in DIR that still run: leave them (and their
# config) alone and let the caller decide.
if [[ -f $base/master.pid ]]; then
    pid=$(<"$base/master.pid")
    if alive "$pid" && is_dovecot "$pid"; then
        die "dovecot already runs in $dir (pid $pid); stop it with scripts/mail-stop.sh first"
    fi
fi
if [[ -f $smtp_pidfile ]]; then
    pid=$(<"$smtp_pidfile")
    if alive "$pid" && is_sink "$pid"; then
        die "the smtp server already runs in $dir (pid $pid); stop it with scripts/mail-stop.sh first"
    fi
fi

# Dovecot's unix sockets live in base_dir; their paths are limited to ~107
# bytes (sun_path) and the longest name there is ~25 bytes.
((${#base} < 80)) || die "directory path too long ($base); use a shorter DIR"

# Dovecot refuses mail access as root (uid 0) and runs fine unprivileged
# ("rootless": every service as one user, no chroot). As root we run both
# servers as a dedicated unprivileged system user; otherwise as ourselves.
# Root can still add users and read everything, as tests need.
if [[ $(id -u) -eq 0 ]]; then
    if ! id -u "$MAIL_USER" >/dev/null 2>&1; then
        log "creating system user $MAIL_USER"
        # A parallel run may create the user at the same moment; only fail if
        # the user still does not exist afterwards.
        useradd --system --no-create-home --shell /usr/sbin/nologin "$MAIL_USER" ||
            id -u "$MAIL_USER" >/dev/null 2>&1 ||
            die "could not create user $MAIL_USER"
    fi
    run_uid=$(id -u "$MAIL_USER")
    run_gid=$(id -g "$MAIL_USER")
    # env and setpriv exec what they run: a command started with this prefix
    # keeps its pid.
    as_run=(env "HOME=$dir" setpriv --reuid="$run_uid" --regid="$run_gid" --init-groups --)
else
    run_uid=$(id -u)
    run_gid=$(id -g)
    as_run=()
fi
run_user=$(id -un "$run_uid")
run_group=$(getent group "$run_gid" | cut -d: -f1)
[[ -n $run_group ]] || die "gid $run_gid has no group name (dovecot needs one)"

mkdir -p -- "$base" "$dir/state" "$dir/mail" "$users" "$outbox" "$dir/smtp-envelopes" "$dir/smtp-tmp"
if [[ $(id -u) -eq 0 ]]; then
    chown -R "$run_uid:$run_gid" -- "$dir"
fi
# The servers' cwd is DIR; the run user must be able to reach it (every
# parent directory searchable).
cd -- "$dir"
"${as_run[@]}" test -w "$dir" -a -x "$dir" ||
    die "$run_user cannot write to $dir (are its parent directories searchable by other users?)"

log "writing $conf"
cat >"$conf" <<EOF
# written by scripts/mail-start.sh on every start; do not edit
# Self-contained: nothing from /etc/dovecot is read.
protocols = imap lmtp
listen = 127.0.0.1
base_dir = $base
state_dir = $dir/state
log_path = $dir/dovecot.log

# Tests talk in cleartext on loopback.
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# Log why a login or a delivery lookup failed.
auth_verbose = yes
# Tests try wrong passwords on purpose. By default each failure is answered
# after 2 s, and repeated failures from one IP (all tests come from
# 127.0.0.1) are slowed further by anvil's penalty: 1.5 s, then 6 s each.
# With no delay a failure is answered within 0.5 s (dovecot sends queued
# failures every 0.5 s), and the penalty is off (see service anvil below).
auth_failure_delay = 0 secs

# Rootless: every process runs as the user that started dovecot, and no
# chroot (that needs root).
default_internal_user = $run_user
default_internal_group = $run_group
default_login_user = $run_user
first_valid_uid = $run_uid
first_valid_gid = $run_gid

# "ana", "Ana" and "ana@any.domain" (what LMTP looks up) are all user "ana".
auth_username_format = %Ln
# One passwd-file per user (see the top of scripts/mail-start.sh for why);
# a missing file is an unknown user.
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $users/%n
}
userdb {
  driver = passwd-file
  args = username_format=%n $users/%n
  default_fields = uid=$run_uid gid=$run_gid home=$dir/mail/%n
}
mail_location = maildir:$dir/mail/%n/Maildir
mail_plugins =
# Test data is thrown away: skip fsync for speed.
mail_fsync = never

# New mail reaches IDLE clients through inotify within ~0.5 s (measured);
# where inotify is not available dovecot polls, by default every 30 s: make
# it 1 s. (We leave
# imap_idle_notify_interval alone: it only sets how often an idle client gets
# "* OK Still here", which would wake clients for nothing.)
mailbox_idle_check_interval = 1 secs

# Tests may hold many sessions of one user at once (the default allows 10
# per user and IP; 100 is also the default limit of imap processes).
protocol imap {
  mail_max_userip_connections = 100
}

service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  # No TLS, and port 993 needs root.
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp_port
  }
}
service anvil {
  chroot =
  # No socket, no brute-force penalty: auth finds no anvil to ask.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
EOF

tail_log() {
    local f=$1
    if [[ -f $f ]]; then
        log "last lines of $f:"
        tail -n 40 -- "$f" >&2 || true
    fi
}

# Read the first line a server sends on 127.0.0.1:PORT (empty if none).
greeting() {
    local line=
    { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 0
    IFS= read -r -t 2 line <&3 || true
    exec 3<&-
    printf '%s\n' "${line%$'\r'}"
}

# If we fail from here on, stop whatever we already started.
started=0
on_exit() {
    if ((!started)); then
        bash "$here/mail-stop.sh" "$dir" >&2 || true
    fi
}
trap on_exit EXIT

# Dovecot forks into the background itself. Its own output (config errors
# before it forks) goes to a file, so no daemon keeps our stdout or stderr
# open (a caller reading them would otherwise wait forever).
log "starting dovecot: imap on 127.0.0.1:$imap_port, lmtp on 127.0.0.1:$lmtp_port (log: $dir/dovecot.log)"
t0=$(date +%s%N)
if ! "${as_run[@]}" "$dovecot_bin" -c "$conf" </dev/null >"$dir/dovecot-start.log" 2>&1; then
    tail_log "$dir/dovecot-start.log"
    tail_log "$dir/dovecot.log"
    die "dovecot did not start"
fi

dovecot_up=0
for _ in $(seq 1 100); do
    if [[ $(greeting "$imap_port") == '* OK'* && $(greeting "$lmtp_port") == 220* ]]; then
        dovecot_up=1
        break
    fi
    sleep 0.1
done
if ((!dovecot_up)); then
    tail_log "$dir/dovecot-start.log"
    tail_log "$dir/dovecot.log"
    die "dovecot did not answer on 127.0.0.1:$imap_port (imap) and 127.0.0.1:$lmtp_port (lmtp)"
fi
log "dovecot ready after $((($(date +%s%N) - t0) / 1000000)) ms"

# The SMTP server runs in the background with its output in a file, for the
# same reason as above. A simple command (no function, no subshell), so $! is
# the python process itself.
log "starting smtp server on 127.0.0.1:$smtp_port (log: $dir/smtp.log)"
t0=$(date +%s%N)
"${as_run[@]}" "$PYTHON" "$sink" --port "$smtp_port" --lmtp-port "$lmtp_port" --dir "$dir" \
    </dev/null >>"$dir/smtp.log" 2>&1 &
smtp_pid=$!
echo "$smtp_pid" >"$smtp_pidfile"

smtp_up=0
for _ in $(seq 1 100); do
    alive "$smtp_pid" || break
    if [[ $(greeting "$smtp_port") == 220* ]]; then
        smtp_up=1
        break
    fi
    sleep 0.1
done
if ((!smtp_up)); then
    tail_log "$dir/smtp.log"
    die "the smtp server did not answer on 127.0.0.1:$smtp_port"
fi
log "smtp server ready after $((($(date +%s%N) - t0) / 1000000)) ms"

started=1
printf 'export SWITCHBOARD_TEST_IMAP=%q\n' "127.0.0.1:$imap_port"
printf 'export SWITCHBOARD_TEST_SMTP=%q\n' "127.0.0.1:$smtp_port"
printf 'export SWITCHBOARD_TEST_MAIL_DIR=%q\n' "$dir"
