-- Two-factor authentication with an authenticator app (TOTP), recovery codes and passkeys.

-- users.two_factor takes the new methods. SQLite can't alter a CHECK constraint; loosening one
-- by editing the table's stored definition is the procedure SQLite documents for it ("Making
-- Other Kinds Of Table Schema Changes": removing or relaxing a CHECK changes no stored row).
-- RESET reloads this connection's schema; the CREATE TABLEs below change the schema cookie, so
-- every other connection reloads it too.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, 'CHECK (two_factor IN (''email'', ''disabled''))',
                  'CHECK (two_factor IN (''email'', ''disabled'', ''totp'', ''passkey''))')
WHERE type = 'table' AND name = 'users';
PRAGMA writable_schema = RESET;

-- The active authenticator-app secret of a user whose method is TOTP, encrypted with the key of
-- BACKOFFICE_SECRET_KEY_FILE (a dump alone doesn't yield it). `last_step` is the time step of
-- the last accepted code: that step and every earlier one are spent, and the conditional
-- UPDATE that moves it forward is what makes a code work once whichever instance checks it.
CREATE TABLE totp_secrets (
    user_id BIGINT PRIMARY KEY REFERENCES users (id),
    secret TEXT NOT NULL,
    last_step BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A TOTP set-up in progress: the secret shown as a QR code, waiting for a correct code. It
-- replaces nothing until then (the method in use keeps working).
CREATE TABLE totp_enrolments (
    user_id BIGINT PRIMARY KEY REFERENCES users (id),
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Single-use recovery codes, stored as keyed hashes; a used code keeps its row (when it was used).
CREATE TABLE recovery_codes (
    user_id BIGINT NOT NULL REFERENCES users (id),
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- WebAuthn credentials (the whole credential, encrypted); `credential_key` is the SHA-256 of the
-- credential id, so one authenticator's credential can't be registered twice.
CREATE TABLE passkeys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    credential_key TEXT NOT NULL,
    credential TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    CONSTRAINT passkeys_credential_key_unique UNIQUE (credential_key)
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- A WebAuthn ceremony in progress (registration or sign-in), bound to the session that started
-- it, so the instance that finishes it needn't be the one that started it. Encrypted: it holds
-- the challenge.
CREATE TABLE webauthn_ceremonies (
    session_hash TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Settings changed at run time and shared by every instance (System › Settings), and the
-- check value that tells whether BACKOFFICE_SECRET_KEY_FILE holds this database's key.
CREATE TABLE system_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
