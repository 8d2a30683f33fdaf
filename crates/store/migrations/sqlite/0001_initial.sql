-- Back Office users, groups, sessions, sign-in codes and the event log.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
    two_factor TEXT NOT NULL CHECK (two_factor IN ('email', 'disabled')),
    mask_data BOOLEAN NOT NULL DEFAULT FALSE,
    must_change_password BOOLEAN NOT NULL DEFAULT TRUE,
    created_by INTEGER REFERENCES users (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_sign_in_at BIGINT,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    CONSTRAINT users_email_key_unique UNIQUE (email_key)
);

CREATE TABLE access_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    caption TEXT NOT NULL,
    caption_key TEXT NOT NULL,
    builtin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT access_groups_caption_key_unique UNIQUE (caption_key)
);

CREATE TABLE group_permissions (
    group_id BIGINT NOT NULL REFERENCES access_groups (id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (group_id, permission)
);

CREATE TABLE user_groups (
    user_id BIGINT NOT NULL REFERENCES users (id),
    group_id BIGINT NOT NULL REFERENCES access_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);
CREATE INDEX user_groups_group ON user_groups (group_id);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id),
    stage TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ip TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE sign_in_codes (
    session_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    code_hash TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    failures BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE code_sends (
    user_id BIGINT NOT NULL REFERENCES users (id),
    sent_at BIGINT NOT NULL
);
CREATE INDEX code_sends_user ON code_sends (user_id, sent_at);

CREATE TABLE events (
    id BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_id BIGINT,
    actor_email TEXT,
    actor_groups TEXT NOT NULL,
    category TEXT NOT NULL,
    action TEXT NOT NULL,
    event TEXT NOT NULL,
    target_type TEXT,
    target_id BIGINT,
    target_label TEXT,
    details TEXT NOT NULL,
    ip TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX events_actor ON events (actor_id, id);
CREATE INDEX events_target ON events (target_type, target_id, id);
CREATE INDEX events_at ON events (at);

-- The head of the event chain: one row, updated in the same transaction as each append, so
-- concurrent writers (several instances on one PostgreSQL) are serialised on it.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only: the database itself refuses edits and deletes of event rows.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'event log rows are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'event log rows are append-only'); END;
