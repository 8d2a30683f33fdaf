-- Password attempts per client address, in fixed windows that start at an address's first
-- attempt: the per-address sign-in limit, kept here so that every instance agrees. Rows whose
-- window has ended are purged with expired sessions.
CREATE TABLE sign_in_addresses (
    address TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    attempts BIGINT NOT NULL
);
CREATE INDEX sign_in_addresses_window ON sign_in_addresses (window_start);
