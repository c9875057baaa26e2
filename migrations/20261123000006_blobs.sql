-- Attachment bytes, stored once per content (SHA-256). In the store rather than on a node's disk,
-- so every hub node on one PostgreSQL serves them. BYTEA is PostgreSQL's binary type; SQLite
-- keeps blob values as blobs whatever the declared type.
CREATE TABLE blobs (
    sha256       TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    data         BYTEA NOT NULL,
    created_at   BIGINT NOT NULL
);
