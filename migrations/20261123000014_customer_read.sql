-- How far the customer has read a conversation (a chat visitor's read receipt): the highest
-- per-conversation sequence number they have seen; 0 before any.
ALTER TABLE conversations ADD COLUMN customer_read_seq BIGINT NOT NULL DEFAULT 0;
