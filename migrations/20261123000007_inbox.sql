-- The shared inbox: how long the customer has waited, labels, and canned responses.
--
-- `waiting_since` is the first customer message nobody has answered yet: set by an inbound
-- touchpoint that needs a reply when it is not set, cleared by an agent's reply or by resolving.
-- The inbox sorts on it (longest wait first), so it is a column with an index, not a subquery.
ALTER TABLE conversations ADD COLUMN waiting_since BIGINT;
CREATE INDEX conversations_status_waiting ON conversations (status, waiting_since);

-- Free-form labels on conversations ("refund", "vip"), lower-cased.
CREATE TABLE conversation_labels (
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    label           TEXT NOT NULL,
    PRIMARY KEY (conversation_id, label)
);
CREATE INDEX conversation_labels_label ON conversation_labels (label);

-- Saved answers agents insert into a reply; `{{contact.name}}`-style placeholders are filled
-- in for the conversation at hand.
CREATE TABLE canned_responses (
    id         TEXT PRIMARY KEY,
    shortcut   TEXT NOT NULL UNIQUE,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_by TEXT REFERENCES agents (id),
    created_at BIGINT NOT NULL
);
