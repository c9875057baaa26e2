-- Chat replies a visitor had not read in time, sent on by email (the offline fallback): each
-- once. `email_interaction_id` is the email that carried it; NULL when the visitor left no
-- email address, so the reply is not looked at again.
CREATE TABLE chat_fallbacks (
    interaction_id TEXT PRIMARY KEY REFERENCES interactions (id),
    email_interaction_id TEXT REFERENCES interactions (id),
    created_at BIGINT NOT NULL
);
