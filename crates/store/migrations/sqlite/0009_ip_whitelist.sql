-- "IP Whitelist": the addresses a staff member may use the Back Office from, normalised by
-- domain::ip_whitelist, one address or CIDR range per line; '' means anywhere.
ALTER TABLE users ADD COLUMN ip_whitelist TEXT NOT NULL DEFAULT '';

-- The Users list's Creator filter lists who created someone: read as a skip over this index
-- (one step per creator), not a scan of every user per user.
CREATE INDEX users_created_by ON users (created_by);
