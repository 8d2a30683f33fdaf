-- "IP Whitelist": the addresses a staff member may use the Back Office from, normalised by
-- domain::ip_whitelist, one address or CIDR range per line; '' means anywhere.
ALTER TABLE users ADD COLUMN ip_whitelist TEXT NOT NULL DEFAULT '';
