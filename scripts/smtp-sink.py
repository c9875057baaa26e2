#!/usr/bin/python3
"""SMTP server for tests, started by scripts/mail-start.sh.

Listens on 127.0.0.1:PORT, plain SMTP without TLS; AUTH PLAIN and LOGIN are
offered and accept any credentials (clients that always log in work too).
For every message it:

1. saves the raw bytes as DIR/smtp-outbox/N.eml (N = 1, 2, ... in arrival
   order) and its envelope as DIR/smtp-envelopes/N.json ({"mail_from": ...,
   "rcpt_tos": [...]}, "" for the null sender; the only place Bcc
   recipients show). Both are written in DIR/smtp-tmp and renamed into
   place, N.json first: smtp-outbox only ever holds complete N.eml files,
   and once N.eml exists N.json does too;
2. delivers it to dovecot over LMTP on 127.0.0.1:LMTP_PORT, one transaction
   per recipient (dovecot's user is the local part of the address).

The message is saved whatever happens. If dovecot refuses a recipient (an
unknown user), the client gets 550 for the message (451 if dovecot could not
be reached or answered with a temporary error); the others are delivered.

Runs until SIGTERM. Needs Debian's python3-aiosmtpd (/usr/bin/python3).
"""

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import smtplib
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

log = logging.getLogger("smtp-sink")


def accept_any_login(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True)


class Sink:
    def __init__(self, mail_dir, lmtp_port):
        self.outbox = os.path.join(mail_dir, "smtp-outbox")
        self.envelopes = os.path.join(mail_dir, "smtp-envelopes")
        self.tmp = os.path.join(mail_dir, "smtp-tmp")
        for d in (self.outbox, self.envelopes, self.tmp):
            os.makedirs(d, exist_ok=True)
        self.lmtp_port = lmtp_port
        # Continue the numbering of a reused outbox.
        numbers = [
            int(m.group(1))
            for name in os.listdir(self.outbox)
            if (m := re.fullmatch(r"(\d+)\.eml", name))
        ]
        self.count = max(numbers, default=0)

    def _write(self, directory, name, data):
        # Written elsewhere on the same file system and renamed into place,
        # so a reader never sees a partly written file.
        tmp = os.path.join(self.tmp, name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(directory, name))

    async def handle_DATA(self, server, session, envelope):
        # Runs on the event loop thread: the counter needs no lock.
        self.count += 1
        n = self.count
        raw = envelope.original_content
        # The null sender (MAIL FROM:<>) as "".
        mail_from = envelope.mail_from or ""
        if mail_from == "<>":
            mail_from = ""
        rcpts = list(envelope.rcpt_tos)
        meta = {"mail_from": mail_from, "rcpt_tos": rcpts}
        self._write(self.envelopes, f"{n}.json", json.dumps(meta, indent=1).encode() + b"\n")
        self._write(self.outbox, f"{n}.eml", raw)
        log.info("message %d from <%s> to %s: %d bytes saved", n, mail_from, rcpts, len(raw))

        # smtplib blocks: keep it off the event loop.
        refused = await asyncio.get_running_loop().run_in_executor(
            None, self._deliver, mail_from, rcpts, raw
        )
        if not refused:
            log.info("message %d delivered", n)
            return f"250 2.0.0 OK saved as {n}.eml and delivered"
        detail = "; ".join(
            f"<{r}>: {code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
            for r, (code, msg) in refused.items()
        )
        log.info("message %d: not delivered to %s", n, detail)
        # SMTP has one reply for the whole message: permanent if any
        # recipient was refused permanently.
        if any(code >= 500 for code, _ in refused.values()):
            return f"550 5.1.1 saved as {n}.eml; not delivered to {detail}"
        return f"451 4.3.0 saved as {n}.eml; not delivered to {detail}"

    def _deliver(self, mail_from, rcpts, raw):
        """Hand the message to dovecot; return {rcpt: (code, msg)} refused."""
        refused = {}
        pending = list(rcpts)
        try:
            with smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=30) as lmtp:
                lmtp.ehlo_or_helo_if_needed()
                options = []
                if any(b > 127 for b in raw) and lmtp.has_extn("8bitmime"):
                    options.append("BODY=8BITMIME")
                utf8 = lmtp.has_extn("smtputf8")
                if utf8 and not (mail_from + "".join(rcpts)).isascii():
                    options.append("SMTPUTF8")
                if not utf8 and not mail_from.isascii():
                    # Dovecot 2.3's LMTP has no SMTPUTF8. The sender only
                    # becomes the Return-Path header: deliver with a null
                    # sender rather than not at all.
                    mail_from = ""
                # One recipient per transaction: LMTP answers DATA once per
                # accepted recipient, but smtplib reads only one answer.
                while pending:
                    rcpt = pending[0]
                    if not utf8 and not rcpt.isascii():
                        # Dovecot users here are ASCII names anyway.
                        refused[rcpt] = (550, "5.1.1 non-ASCII address, no such user")
                    else:
                        try:
                            lmtp.sendmail(mail_from, [rcpt], raw, mail_options=options)
                        except smtplib.SMTPRecipientsRefused as e:
                            refused.update(e.recipients)
                        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
                            refused[rcpt] = (e.smtp_code, e.smtp_error)
                    # Only now: an exception above leaves it pending (451).
                    pending.pop(0)
        except Exception as e:
            # Dovecot down, a dropped connection, or a bug here: the client
            # gets a temporary error for the recipients not yet handled.
            log.exception("lmtp delivery failed")
            for rcpt in pending:
                refused[rcpt] = (451, f"lmtp delivery failed: {e!r}")
        return refused


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lmtp-port", type=int, required=True)
    parser.add_argument("--dir", required=True, help="where smtp-outbox/ and the rest go")
    args = parser.parse_args()

    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    # aiosmtpd 1.4 warns about its own use of a deprecated attribute on
    # every AUTH; not our problem, and it would read like one in the log.
    logging.getLogger("mail.log").addFilter(
        lambda record: "login_data is deprecated" not in record.getMessage()
    )
    # Block the stop signals before any thread starts (threads inherit the
    # mask), then wait for one of them on this thread.
    stop_signals = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)

    controller = Controller(
        Sink(args.dir, args.lmtp_port),
        hostname="127.0.0.1",
        port=args.port,
        server_hostname="switchboard-test-smtp",
        # Raw bytes in envelope.original_content, no decoding.
        decode_data=False,
        enable_SMTPUTF8=True,
        # Offer AUTH without TLS and accept any credentials; AUTH stays
        # optional.
        authenticator=accept_any_login,
        auth_require_tls=False,
        auth_required=False,
    )
    controller.start()
    log.info("listening on 127.0.0.1:%d, delivering to lmtp 127.0.0.1:%d", args.port, args.lmtp_port)

    sig = signal.sigwait(stop_signals)
    log.info("got signal %d, stopping", sig)
    controller.stop()


if __name__ == "__main__":
    main()
