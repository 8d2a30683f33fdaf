-- The Dashboard's client figures, kept as clients change instead of counted when viewed (issue
-- 27: a count over every client each time the figures went stale).
--
-- Every client by (status, country): the figures of a viewer who sees every client. The
-- triggers below add to them in the writing transaction, so no write path can forget it (SQLite
-- has one writer at a time: no two transactions wait for the same row; PostgreSQL appends
-- changes instead, see its migration 0020).
CREATE TABLE client_figures (
    status TEXT NOT NULL,
    country TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (status, country)
) WITHOUT ROWID;
INSERT INTO client_figures (status, country, n)
SELECT status, country, COUNT(*) FROM clients GROUP BY status, country;

CREATE TRIGGER clients_figures_added AFTER INSERT ON clients BEGIN
    INSERT INTO client_figures (status, country, n) VALUES (NEW.status, NEW.country, 1)
        ON CONFLICT (status, country) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER clients_figures_gone AFTER DELETE ON clients BEGIN
    UPDATE client_figures SET n = n - 1 WHERE status = OLD.status AND country = OLD.country;
END;

-- A viewer limited to some tags sees the clients carrying one of them: counted from the tags'
-- index alone, which now carries each client's status and country. The pair's insert writes
-- them (`sql/clients.rs`); the triggers keep them whatever writes, as with `email_key`
-- (migration 0014).
DROP INDEX client_tags_email;
DROP TRIGGER client_tags_email_insert;
ALTER TABLE client_tags ADD COLUMN status TEXT NOT NULL DEFAULT '';
ALTER TABLE client_tags ADD COLUMN country TEXT NOT NULL DEFAULT '';
UPDATE client_tags SET (status, country) =
    (SELECT status, country FROM clients WHERE id = client_tags.client_id);
CREATE INDEX client_tags_email ON client_tags (tag_id, email_key, client_id, status, country);

CREATE TRIGGER client_tags_from_client AFTER INSERT ON client_tags
    WHEN NOT EXISTS (SELECT 1 FROM clients WHERE id = NEW.client_id AND email_key = NEW.email_key
                     AND status = NEW.status AND country = NEW.country)
BEGIN
    UPDATE client_tags SET (email_key, status, country) =
        (SELECT email_key, status, country FROM clients WHERE id = NEW.client_id)
     WHERE client_id = NEW.client_id AND tag_id = NEW.tag_id;
END;

-- A client whose status or country changes: out of the old key, into the new, and the copies
-- on its tag pairs.
CREATE TRIGGER clients_figures_moved AFTER UPDATE OF status, country ON clients
    WHEN OLD.status IS NOT NEW.status OR OLD.country IS NOT NEW.country
BEGIN
    UPDATE client_figures SET n = n - 1 WHERE status = OLD.status AND country = OLD.country;
    INSERT INTO client_figures (status, country, n) VALUES (NEW.status, NEW.country, 1)
        ON CONFLICT (status, country) DO UPDATE SET n = n + 1;
    UPDATE client_tags SET status = NEW.status, country = NEW.country WHERE client_id = NEW.id;
END;
