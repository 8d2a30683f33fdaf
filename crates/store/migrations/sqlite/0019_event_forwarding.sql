-- Forwarding the event log to a SIEM (syslog, webhook): per destination, the id of the last
-- event it acknowledged (the cursor: delivery resumes after it, across restarts and outages),
-- which instance forwards to it now and until when (a lease: with several instances only one
-- forwards at a time), and how the last attempts went (shown on System › Settings).
CREATE TABLE event_forwarding (
    sink TEXT PRIMARY KEY,
    cursor BIGINT NOT NULL,
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0,
    delivered_at BIGINT,
    failures BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_at BIGINT
);
