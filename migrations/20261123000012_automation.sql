-- Segments, value-based priority and event-driven triggers.

-- A saved filter over contacts' attributes and activity. `rule` is the JSON rule as the admin
-- wrote it (parsed and checked before it is stored). A segment may set the priority and the
-- SLA policy of its members' new conversations.
CREATE TABLE segments (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    rule          TEXT NOT NULL,
    priority      TEXT,
    sla_policy_id TEXT REFERENCES sla_policies (id),
    created_at    BIGINT NOT NULL
);

-- Who is in a segment now; kept current as contacts' data changes.
CREATE TABLE segment_members (
    segment_id TEXT NOT NULL REFERENCES segments (id),
    contact_id TEXT NOT NULL REFERENCES contacts (id),
    entered_at BIGINT NOT NULL,
    PRIMARY KEY (segment_id, contact_id)
);
CREATE INDEX segment_members_contact ON segment_members (contact_id);

-- Why a conversation has its priority ("segment VIP", "trigger Third missed call"), and the
-- SLA policy a segment chose for it (otherwise the policy follows inbox and priority).
ALTER TABLE conversations ADD COLUMN priority_reason TEXT;
ALTER TABLE conversations ADD COLUMN sla_policy_id TEXT REFERENCES sla_policies (id);

-- Rules of the form: when <event> and <conditions> then <actions>.
CREATE TABLE triggers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    event      TEXT NOT NULL,
    -- For `segment_entered`: the segment whose entry fires it.
    segment_id TEXT REFERENCES segments (id),
    conditions TEXT NOT NULL,
    actions    TEXT NOT NULL,
    enabled    BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);

-- Events waiting for segments and triggers, written in the transaction that made them true.
-- `key` names the fact ("interaction_received:<id>"), so the same fact is queued once. The
-- automation worker deletes a row in the transaction that applies its consequences: each
-- event is handled exactly once, and a crash in between leaves the row to handle again.
CREATE TABLE automation_queue (
    id              TEXT PRIMARY KEY,
    key             TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    contact_id      TEXT,
    conversation_id TEXT,
    interaction_id  TEXT,
    data            TEXT NOT NULL DEFAULT '{}',
    not_before      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX automation_queue_due ON automation_queue (not_before);

-- Each trigger fires at most once per event.
CREATE TABLE trigger_firings (
    trigger_id      TEXT NOT NULL REFERENCES triggers (id),
    event_key       TEXT NOT NULL,
    conversation_id TEXT,
    fired_at        BIGINT NOT NULL,
    PRIMARY KEY (trigger_id, event_key)
);

-- Outgoing webhooks a trigger sent, delivered at least once by a worker; the receiver
-- deduplicates on the delivery id it gets in `X-Switchboard-Delivery`.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    trigger_id      TEXT NOT NULL REFERENCES triggers (id),
    event_key       TEXT NOT NULL,
    url             TEXT NOT NULL,
    secret          TEXT,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,
    last_error      TEXT,
    delivered_at    BIGINT,
    created_at      BIGINT NOT NULL,
    UNIQUE (trigger_id, event_key)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
