#!/usr/bin/env bash
# The test command of the project: start the real servers the tests need on
# loopback, run the whole workspace's tests with cargo-nextest, stop the
# servers. Extra arguments are passed to `cargo nextest run`
# (e.g. scripts/test.sh -E 'test(login)').
#
# Works from any cwd and on a fresh Debian machine as root (missing tools are
# installed on first use).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'test: %s\n' "$*" >&2; }

# One target directory shared across runs, so builds are incremental.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard-target}"

if ! cargo nextest --version >/dev/null 2>&1; then
    log "cargo-nextest not found, installing it"
    cargo install --locked cargo-nextest
fi

# Ask the kernel for a free port. Another process could take it before the
# server binds it, hence the retries below.
free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    else
        # No python: pick a random high port nobody answers on.
        local p
        while :; do
            p=$((20000 + RANDOM % 40000))
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
                echo "$p"
                return
            fi
        done
    fi
}

tmp=$(mktemp -d -t switchboard-test.XXXXXX)
# mktemp makes it 0700; as root the servers run as an unprivileged user that
# must be able to reach its own subdirectory (traverse, not list).
chmod 711 "$tmp"
pg_started=0
mail_started=0

# Stop everything we started and remove the temp dir, whatever happens.
cleanup() {
    if ((mail_started)); then
        bash scripts/mail-stop.sh "$tmp/mail" || log "warning: could not stop the mail servers"
    fi
    if ((pg_started)); then
        bash scripts/pg-stop.sh "$tmp/pg" || log "warning: could not stop postgresql"
    fi
    rm -rf -- "$tmp"
}
trap cleanup EXIT
# On a signal, exit (which runs the EXIT trap once) with the usual status.
trap 'exit 130' INT
trap 'exit 143' TERM

# PostgreSQL.
pg_url=
for attempt in 1 2 3; do
    port=$(free_port)
    pg_started=1
    if pg_url=$(bash scripts/pg-start.sh "$tmp/pg" "$port" | tail -n1); then
        break
    fi
    pg_url=
    log "postgresql did not start on port $port (attempt $attempt)"
    bash scripts/pg-stop.sh "$tmp/pg" || true
done
[[ -n $pg_url ]] || { log "error: could not start postgresql"; exit 1; }
export SWITCHBOARD_TEST_PG_URL=$pg_url
log "postgresql at $SWITCHBOARD_TEST_PG_URL"

# Mail: dovecot (IMAP, and LMTP for delivery) and the SMTP server in front of
# it. Tests add users as files in $SWITCHBOARD_TEST_MAIL_DIR/users.d/ and
# find every message sent over SMTP in $SWITCHBOARD_TEST_MAIL_DIR/smtp-outbox/
# (see scripts/mail-start.sh).
mail_env=
for attempt in 1 2 3; do
    # Three distinct ports (the kernel may hand out one twice in a row).
    imap_port=$(free_port)
    lmtp_port=$(free_port)
    while [[ $lmtp_port == "$imap_port" ]]; do lmtp_port=$(free_port); done
    smtp_port=$(free_port)
    while [[ $smtp_port == "$imap_port" || $smtp_port == "$lmtp_port" ]]; do smtp_port=$(free_port); done
    mail_started=1
    if mail_env=$(bash scripts/mail-start.sh "$tmp/mail" "$imap_port" "$lmtp_port" "$smtp_port"); then
        break
    fi
    mail_env=
    log "mail servers did not start on ports $imap_port, $lmtp_port, $smtp_port (attempt $attempt)"
    bash scripts/mail-stop.sh "$tmp/mail" || true
done
[[ -n $mail_env ]] || { log "error: could not start the mail servers"; exit 1; }
# Only the export lines; the values are quoted by mail-start.sh.
eval "$(grep '^export SWITCHBOARD_TEST_' <<<"$mail_env")"
log "imap at $SWITCHBOARD_TEST_IMAP, smtp at $SWITCHBOARD_TEST_SMTP, mail dir $SWITCHBOARD_TEST_MAIL_DIR"

# Browser: Debian's chromium, driven by playwright-core from npm (which downloads
# no browser of its own). The browser tests start and stop it themselves.
if [[ ! -x /usr/bin/chromium ]]; then
    log "installing chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
    log "installing playwright-core"
    npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi

status=0
cargo nextest run --workspace --no-fail-fast "$@" || status=$?
# The whole suite (no filter given) also fuzzes every parser of untrusted input briefly, and
# keeps the benchmark command working with its short run (a release build; about two minutes,
# on the embedded store). A failed request in the benchmark fails it.
if [[ $# -eq 0 ]]; then
    bash scripts/fuzz.sh "${SWITCHBOARD_FUZZ_SECONDS:-10}" || status=$?
    log "benchmark: --quick"
    if cargo build --release --bin switchboard-bench; then
        "$CARGO_TARGET_DIR/release/switchboard-bench" --quick --out "$tmp/bench" || status=$?
    else
        status=1
    fi
fi
exit "$status"
