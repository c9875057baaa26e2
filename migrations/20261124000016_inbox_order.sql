-- The inbox's order (store::inbox::INBOX_ORDER), as an index: a page of the inbox is then the
-- first rows of the index instead of a sort of every open conversation (34 ms for 28,000 open
-- ones here, on every load of every agent's console). The expressions must stay exactly as the
-- query writes them, or the planner does not see that they are the same.
CREATE INDEX conversations_inbox ON conversations (
    status,
    (CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END),
    (waiting_since IS NULL),
    waiting_since,
    last_activity_at DESC,
    id DESC
);
