-- Client tags (issue 26): short captions, unique case-insensitively (caption_key is the
-- lower-cased caption, written by the application). `clients` counts the clients that carry the
-- tag; it is kept in step by every statement that adds or removes a client's tag, in the same
-- transaction, so the Tags page never counts two million rows.
CREATE TABLE tags (
    id BIGSERIAL PRIMARY KEY,
    caption TEXT NOT NULL,
    caption_key TEXT NOT NULL,
    clients BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    CONSTRAINT tags_caption_key_unique UNIQUE (caption_key)
);

-- Which client carries which tag. The primary key answers "does this client carry one of these
-- tags" (the scope check, one probe per client); the second index lists a tag's clients in id
-- order (a scoped list or count driven by the tag).
CREATE TABLE client_tags (
    client_id BIGINT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    tag_id BIGINT NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (client_id, tag_id)
);
CREATE INDEX client_tags_tag ON client_tags (tag_id, client_id);

-- Allowed Client Tags of a user's own account and of a group. A tag in anyone's scope can't be
-- deleted (no ON DELETE): deleting it would silently widen its holders to every client.
CREATE TABLE user_allowed_tags (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tag_id BIGINT NOT NULL REFERENCES tags (id),
    PRIMARY KEY (user_id, tag_id)
);
CREATE INDEX user_allowed_tags_tag ON user_allowed_tags (tag_id);
CREATE TABLE group_allowed_tags (
    group_id BIGINT NOT NULL REFERENCES access_groups (id) ON DELETE CASCADE,
    tag_id BIGINT NOT NULL REFERENCES tags (id),
    PRIMARY KEY (group_id, tag_id)
);
CREATE INDEX group_allowed_tags_tag ON group_allowed_tags (tag_id);

-- Bulk changes to every client matching a filter ("Select all" › Edit selected clients), done in
-- batches by whichever instance holds the lease; `cursor` is the last client id done, so an
-- interrupted job resumes where it stopped. `request` and `change` are the app's JSON.
CREATE TABLE bulk_jobs (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    request TEXT NOT NULL,
    change TEXT NOT NULL,
    upto_id BIGINT NOT NULL,
    total BIGINT NOT NULL,
    done BIGINT NOT NULL DEFAULT 0,
    changed BIGINT NOT NULL DEFAULT 0,
    cursor BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('running', 'finished', 'failed')),
    message TEXT NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX bulk_jobs_state ON bulk_jobs (state, lease_until);
