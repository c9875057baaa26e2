-- Delivery receipts from providers (SMS status callbacks), keyed by the provider's message id.
-- Callbacks arrive in any order, and may arrive before our outbox row records the provider's id,
-- so receipts live apart from the outbox and only ever move to a higher-ranked state.
CREATE TABLE provider_receipts (
    channel_account_id TEXT NOT NULL REFERENCES channel_accounts (id),
    peer_id            TEXT NOT NULL,
    status             TEXT NOT NULL,
    rank               BIGINT NOT NULL,
    error_code         TEXT,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (channel_account_id, peer_id)
);

CREATE INDEX outbox_peer ON outbox (channel_account_id, peer_id);
