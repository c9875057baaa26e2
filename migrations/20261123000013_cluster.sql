-- Several hub nodes on one database: who runs what, and state every node must share.

-- A lease on a piece of work that must run on one node at a time (a mailbox's poller, a CDR
-- follower, the metrics and automation workers). The holder renews it; when a node dies its
-- leases expire and another node takes them.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Failed logins per account, so the limit holds whichever node a request reaches.
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    since BIGINT NOT NULL
);
