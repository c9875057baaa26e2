-- A per-conversation sequence number: chat clients resume after a reconnect by asking for
-- everything after the last number they saw. Taken from the conversation's own counter with
-- UPDATE … RETURNING, whose row lock orders concurrent writers to one conversation.
ALTER TABLE conversations ADD COLUMN message_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE interactions ADD COLUMN conversation_seq BIGINT;
CREATE UNIQUE INDEX interactions_conversation_seq ON interactions (conversation_id, conversation_seq);
