-- Response-time metrics, business hours and SLA policies.
--
-- Every figure is derived from the recorded facts (interactions and conversation events) by one
-- function, per conversation; `metric_samples` holds its output so reports are plain queries,
-- and `switchboard metrics rebuild` can recompute all of it when a definition changes.

-- Opening hours: `spec` is the JSON calendar (time zone, intervals per weekday, holidays).
CREATE TABLE business_calendars (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    spec       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- An inbox counts business time by its calendar; none means every hour counts.
ALTER TABLE channel_accounts ADD COLUMN calendar_id TEXT REFERENCES business_calendars (id);

-- Targets in seconds. A policy applies to an inbox and a priority; either may be NULL for
-- "any". The most specific policy wins: inbox and priority, then inbox, then priority, then
-- the default.
CREATE TABLE sla_policies (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    channel_account_id TEXT REFERENCES channel_accounts (id),
    priority           TEXT,
    first_response_s   BIGINT,
    next_response_s    BIGINT,
    resolution_s       BIGINT,
    -- 1: targets count only the inbox's business hours.
    business_hours     BIGINT NOT NULL DEFAULT 0,
    -- 1: time the conversation spends pending (waiting on the customer) does not count.
    pause_when_pending BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX sla_policies_scope ON sla_policies (COALESCE(channel_account_id, ''), COALESCE(priority, ''));

-- One measured interval: a first or next response, a resolution, a call's handle time.
-- `cycle` counts reopenings (0 is the conversation's first life); `ordinal` numbers next
-- responses within a cycle.
CREATE TABLE metric_samples (
    conversation_id    TEXT NOT NULL REFERENCES conversations (id),
    kind               TEXT NOT NULL,
    cycle              BIGINT NOT NULL,
    ordinal            BIGINT NOT NULL,
    channel            TEXT NOT NULL,
    channel_account_id TEXT NOT NULL,
    agent_id           TEXT,
    started_at         BIGINT NOT NULL,
    ended_at           BIGINT NOT NULL,
    seconds            BIGINT NOT NULL,
    business_seconds   BIGINT NOT NULL,
    -- The SLA deadline of this target, when a policy set one.
    due_at             BIGINT,
    PRIMARY KEY (conversation_id, kind, cycle, ordinal)
);
CREATE INDEX metric_samples_ended ON metric_samples (kind, ended_at);

-- Every change to a conversation's facts bumps `metrics_version`; the metrics worker
-- recomputes conversations whose `metrics_done` is behind and records the version it read.
ALTER TABLE conversations ADD COLUMN metrics_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN metrics_done BIGINT NOT NULL DEFAULT -1;
CREATE INDEX conversations_metrics_behind ON conversations (id) WHERE metrics_done < metrics_version;
-- The conversation's next SLA deadline and what it is for (first_response, next_response,
-- resolution); the breach timer and the inbox read them.
ALTER TABLE conversations ADD COLUMN sla_due_at BIGINT;
ALTER TABLE conversations ADD COLUMN sla_due_kind TEXT;
CREATE INDEX conversations_sla_due ON conversations (sla_due_at);

-- A missed deadline, recorded exactly once whatever node's timer saw it first.
CREATE TABLE sla_breaches (
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    kind            TEXT NOT NULL,
    due_at          BIGINT NOT NULL,
    breached_at     BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, kind, due_at)
);
CREATE INDEX sla_breaches_due ON sla_breaches (due_at);
