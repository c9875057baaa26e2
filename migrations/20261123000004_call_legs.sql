-- Calls reported as separate events (ringing, answered, hangup) by a PBX or CTI system. Events
-- arrive in any order and may repeat; each leg row merges what its events said, and the call's
-- interaction is written (and rewritten) from the merged row once a hangup has been seen.
CREATE TABLE call_legs (
    channel_account_id TEXT NOT NULL REFERENCES channel_accounts (id),
    call_id            TEXT NOT NULL,
    from_number        TEXT,
    to_number          TEXT,
    extension          TEXT,
    direction          TEXT,
    ringing_at         BIGINT,
    answered_at        BIGINT,
    ended_at           BIGINT,
    disposition        TEXT,
    recording_url      TEXT,
    notes              TEXT,
    interaction_id     TEXT REFERENCES interactions (id),
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (channel_account_id, call_id)
);

-- One row per (call, event kind) seen, so a repeated event changes nothing.
CREATE TABLE call_events (
    channel_account_id TEXT NOT NULL REFERENCES channel_accounts (id),
    call_id            TEXT NOT NULL,
    event              TEXT NOT NULL,
    received_at        BIGINT NOT NULL,
    PRIMARY KEY (channel_account_id, call_id, event)
);
