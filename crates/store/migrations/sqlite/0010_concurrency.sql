-- Optimistic concurrency: every edit of a user, group or client raises its version by one.
-- Pages carry the version they showed in the form and the API hands it out as an ETag, so an
-- edit based on an older version is answered 409 (412 with If-Match) instead of overwriting.
ALTER TABLE users ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE access_groups ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- An email held for a user being created while the credentials mail is handed to the SMTP
-- server: committed on its own before the conversation starts, so no lock is held during it.
-- Every transaction that gives a user an email claims the key here first (a live reservation
-- of another holder makes it a duplicate); the create's own commit, or its failure, removes it.
-- `expires_at` bounds a reservation whose instance died mid-conversation.
CREATE TABLE email_reservations (
    email_key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Idempotency-Key of the API's POSTs, per caller: the request's hash, and once answered, the
-- answer to replay for 24 hours. `committed` is set in the transaction of the change the
-- request made (with its event), so a request whose change committed is never carried out
-- twice, even when its answer could not be recorded.
CREATE TABLE idempotency_keys (
    scope TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL,
    committed BOOLEAN NOT NULL DEFAULT FALSE,
    status INTEGER,
    content_type TEXT,
    body TEXT
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
