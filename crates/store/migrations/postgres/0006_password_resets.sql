-- Forgotten passwords. One live link per account: a newer request replaces the older one.
CREATE TABLE password_resets (
    user_id BIGINT PRIMARY KEY REFERENCES users (id),
    token_hash TEXT NOT NULL,
    -- SHA-256 of the account's password hash when the link was made: a password change voids it.
    password_fingerprint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX password_resets_token ON password_resets (token_hash);

-- Every request, for a known address or not, for the per-account and per-address limits.
CREATE TABLE password_reset_requests (
    user_id BIGINT,
    ip TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX password_reset_requests_ip ON password_reset_requests (ip, at);
CREATE INDEX password_reset_requests_user ON password_reset_requests (user_id, at);
