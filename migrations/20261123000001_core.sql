-- Switchboard core schema.
--
-- Written once for both stores (SQLite and PostgreSQL, through sqlx's Any driver), so it uses
-- only portable types: ids are UUID text, instants are BIGINT microseconds since the Unix epoch
-- (UTC), JSON documents are TEXT. SQLite gives BIGINT columns integer affinity.

-- Named counters. `interaction` is the change sequence the search index tails: every insert of
-- an interaction, and every change to one that the index must see, takes the next value. Taking
-- it by UPDATE ... RETURNING holds the row lock until commit, so values commit in order and a
-- tailer that has seen N can never later find a smaller value appear.
CREATE TABLE sequences (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO sequences (name, value) VALUES ('interaction', 0);

CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    password_hash TEXT,
    extension     TEXT,
    presence      TEXT NOT NULL DEFAULT 'offline',
    created_at    BIGINT NOT NULL
);

-- Browser sessions. Only a SHA-256 of the cookie value is stored, so a leaked table grants nothing.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_agent ON sessions (agent_id);

-- Tokens for integrations; they act with their own role, on behalf of the agent who made them.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    created_by  TEXT NOT NULL REFERENCES agents (id),
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

-- One configured connector instance: a mailbox, an SMS number, a chat widget, a PBX, an API source.
CREATE TABLE channel_accounts (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('email', 'chat', 'sms', 'voice', 'api')),
    name       TEXT NOT NULL,
    settings   TEXT NOT NULL DEFAULT '{}',
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Which inboxes an agent works in. Supervisors and admins see every inbox.
CREATE TABLE agent_inboxes (
    agent_id           TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    channel_account_id TEXT NOT NULL REFERENCES channel_accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (agent_id, channel_account_id)
);

-- A person. A contact merged into another keeps its row (merged_into set) so the merge can be undone.
CREATE TABLE contacts (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    merged_into TEXT REFERENCES contacts (id),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Canonical addresses (lower-cased email, E.164 phone, visitor id, external id); each belongs to
-- exactly one contact, and the unique key is what caller lookup reads.
CREATE TABLE handles (
    id         TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL REFERENCES contacts (id),
    kind       TEXT NOT NULL CHECK (kind IN ('email', 'phone', 'visitor', 'external')),
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (kind, value)
);
CREATE INDEX handles_contact ON handles (contact_id);

CREATE TABLE conversations (
    id                 TEXT PRIMARY KEY,
    contact_id         TEXT NOT NULL REFERENCES contacts (id),
    channel_account_id TEXT NOT NULL REFERENCES channel_accounts (id),
    channel            TEXT NOT NULL,
    -- The customer's handle this conversation is carried on: replies go to it.
    handle_id          TEXT NOT NULL REFERENCES handles (id),
    status             TEXT NOT NULL CHECK (status IN ('open', 'pending', 'snoozed', 'resolved')),
    priority           TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    assignee_id        TEXT REFERENCES agents (id),
    subject            TEXT,
    thread_key         TEXT,
    opened_at          BIGINT NOT NULL,
    last_activity_at   BIGINT NOT NULL,
    resolved_at        BIGINT
);
CREATE INDEX conversations_contact_account ON conversations (contact_id, channel_account_id, last_activity_at);
CREATE INDEX conversations_thread_key ON conversations (channel_account_id, thread_key);
CREATE INDEX conversations_status_activity ON conversations (status, last_activity_at);

-- Every touchpoint: a message, a note or a call.
CREATE TABLE interactions (
    id                 TEXT PRIMARY KEY,
    seq                BIGINT NOT NULL UNIQUE,
    channel_account_id TEXT NOT NULL REFERENCES channel_accounts (id),
    channel            TEXT NOT NULL,
    external_id        TEXT NOT NULL,
    conversation_id    TEXT NOT NULL REFERENCES conversations (id),
    contact_id         TEXT NOT NULL REFERENCES contacts (id),
    handle_id          TEXT REFERENCES handles (id),
    direction          TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'note', 'system')),
    author_agent_id    TEXT REFERENCES agents (id),
    occurred_at        BIGINT NOT NULL,
    subject            TEXT,
    body_text          TEXT,
    body_html          TEXT,
    details            TEXT NOT NULL DEFAULT '{}',
    attachments        TEXT NOT NULL DEFAULT '[]',
    message_id         TEXT,
    created_at         BIGINT NOT NULL,
    -- A repeat delivery of the same touchpoint is stored once.
    UNIQUE (channel_account_id, external_id)
);
-- The timeline: a contact's touchpoints newest first, keyset-paginated on (occurred_at, id).
CREATE INDEX interactions_timeline ON interactions (contact_id, occurred_at DESC, id DESC);
CREATE INDEX interactions_conversation ON interactions (conversation_id, occurred_at);
CREATE INDEX interactions_message_id ON interactions (message_id);

-- A connector's resume position, written in the same transaction as what it has consumed.
CREATE TABLE connector_cursors (
    channel_account_id TEXT NOT NULL REFERENCES channel_accounts (id),
    stream             TEXT NOT NULL,
    position           TEXT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (channel_account_id, stream)
);

-- Replies waiting to be delivered, written in the same transaction as their interaction.
CREATE TABLE outbox (
    id                 TEXT PRIMARY KEY,
    interaction_id     TEXT NOT NULL UNIQUE REFERENCES interactions (id),
    channel_account_id TEXT NOT NULL REFERENCES channel_accounts (id),
    payload            TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at    BIGINT NOT NULL,
    locked_until       BIGINT,
    last_error         TEXT,
    peer_id            TEXT,
    created_at         BIGINT NOT NULL,
    finished_at        BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

-- Conversation lifecycle events; metrics are computed from these and the interactions.
CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    conversation_id TEXT REFERENCES conversations (id),
    contact_id      TEXT REFERENCES contacts (id),
    agent_id        TEXT REFERENCES agents (id),
    interaction_id  TEXT REFERENCES interactions (id),
    occurred_at     BIGINT NOT NULL,
    data            TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_conversation ON events (conversation_id, occurred_at);

-- Every contact merge, with exactly what moved, so it can be undone.
CREATE TABLE contact_merges (
    id                TEXT PRIMARY KEY,
    source_contact_id TEXT NOT NULL REFERENCES contacts (id),
    target_contact_id TEXT NOT NULL REFERENCES contacts (id),
    handle_ids        TEXT NOT NULL,
    conversation_ids  TEXT NOT NULL,
    interaction_ids   TEXT NOT NULL,
    merged_by         TEXT NOT NULL,
    merged_at         BIGINT NOT NULL,
    unmerged_by       TEXT,
    unmerged_at       BIGINT
);

-- Who did what to whom: merges, unmerges, role and token changes.
CREATE TABLE audit_log (
    id      TEXT PRIMARY KEY,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    data    TEXT NOT NULL DEFAULT '{}',
    at      BIGINT NOT NULL
);
