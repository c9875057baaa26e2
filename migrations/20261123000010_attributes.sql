-- Custom attributes on contacts: typed definitions managed by admins, and each contact's
-- values as a JSON object (validated against the definitions before they are written).
CREATE TABLE attribute_definitions (
    key        TEXT PRIMARY KEY,
    label      TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('text', 'number', 'date', 'boolean', 'list')),
    options    TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL
);
ALTER TABLE contacts ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
