-- Users › Delete granted nothing (staff accounts are disabled, never deleted, so the event log
-- keeps who did what): it leaves the catalogue, and the groups that held it.
DELETE FROM group_permissions WHERE permission = 'users.delete';

-- Create, Update and Delete in a section include View there; groups are saved that way from
-- now on, and the groups saved before get the View their rights imply.
INSERT INTO group_permissions (group_id, permission)
SELECT DISTINCT group_id, split_part(permission, '.', 1) || '.view'
  FROM group_permissions
 WHERE permission LIKE '%.create' OR permission LIKE '%.update' OR permission LIKE '%.delete'
ON CONFLICT (group_id, permission) DO NOTHING;

-- Each staff member's own settings of the interface, e.g. which columns a list shows
-- (`users.columns` → `id,name,email`). Not audited: they change what one sees, not what anyone
-- may do.
CREATE TABLE user_preferences (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
);
