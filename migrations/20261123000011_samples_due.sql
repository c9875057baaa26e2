-- Reports count SLA targets by the period their deadline fell in.
CREATE INDEX metric_samples_due ON metric_samples (due_at);
