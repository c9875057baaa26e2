-- Which inboxes hold each stored attachment, so an agent downloads only attachments of
-- messages in inboxes they work in (the bytes are shared by content hash across inboxes).
CREATE TABLE attachment_refs (
    sha256             TEXT NOT NULL,
    channel_account_id TEXT NOT NULL REFERENCES channel_accounts (id),
    PRIMARY KEY (sha256, channel_account_id)
);
