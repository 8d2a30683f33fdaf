//! System › Users › Groups: captions and the Rights matrix, export and import. Administrators is
//! built in: it grants everything and can't be edited or deleted. Nobody creates a group that
//! grants more than they hold, nor edits, imports over or deletes one whose rights they don't
//! all hold (one comparison of authorities, as for users).

use crate::actor::group_grant;
use crate::concurrency::{check_version, is_retry, rejected, unchanged_since, until_settled};
use crate::tags::tag_captions;
use crate::users::UserView;
use crate::{Actor, App, AppError, FieldErrors};
use domain::audit::{AuditAction, Category, Event};
use domain::{Action, Authority, Permission, PermissionSet, Section};
use serde::{Deserialize, Serialize};
use store::{Decision, GroupChange, GroupDetail, GroupSummary, TagRef};

pub const CAPTION_MAX: usize = 100;
pub const IMPORT_MAX_BYTES: usize = 1024 * 1024;

/// The only `version` of the groups file there is; import refuses any other.
pub const FILE_VERSION: u32 = 1;

/// The export file: what Export writes and Import reads.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GroupsFile {
    pub version: u32,
    pub groups: Vec<GroupEntry>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    pub caption: String,
    pub permissions: Vec<String>,
}

fn parse_caption(raw: &str) -> Result<String, String> {
    let c = raw.trim();
    if c.is_empty() {
        return Err("Enter a caption".into());
    }
    if c.chars().count() > CAPTION_MAX {
        return Err("Caption is too long (at most 100 characters)".into());
    }
    if c.chars().any(char::is_control) {
        return Err("Caption must not contain control characters".into());
    }
    if c.eq_ignore_ascii_case("administrators") {
        return Err("Administrators is built in; choose another caption".into());
    }
    Ok(c.to_string())
}

fn perm_list(set: &PermissionSet) -> String {
    set.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl App {
    /// The guard for groups: the actor covers what the group grants (before and after a change),
    /// its rights over the clients its Allowed Client Tags name.
    async fn guard_group(
        &self,
        actor: &Actor,
        grants: &PermissionSet,
        allowed_tags: &[TagRef],
        attempted: &str,
    ) -> Result<(), AppError> {
        let ids: Vec<i64> = allowed_tags.iter().map(|t| t.id).collect();
        self.guard_covers(
            actor,
            &group_grant(grants.clone(), &ids),
            "You can't grant or change rights you don't hold",
            attempted,
        )
        .await
    }

    /// A group's rights are part of its members' authority, so changing or deleting the group
    /// changes theirs: the actor must also cover every member as they are now.
    async fn guard_members(
        &self,
        actor: &Actor,
        group_id: i64,
        attempted: &str,
    ) -> Result<(), AppError> {
        let members = self.members_authority(group_id).await?;
        self.guard_covers(
            actor,
            &members,
            "You can't change a group whose members hold more than you do",
            attempted,
        )
        .await
    }

    /// The join of the group's members' authorities (one lookup per member: group edits are
    /// rare and groups are staff-sized).
    async fn members_authority(&self, group_id: i64) -> Result<Authority, AppError> {
        let mut members = Vec::new();
        for m in self.store.members_of_group(group_id).await? {
            members.push(self.authority_of_user(&m).await?);
        }
        Ok(members.into_iter().collect())
    }

    pub async fn list_groups(&self, actor: &Actor) -> Result<Vec<GroupSummary>, AppError> {
        self.authorize(actor, Section::Groups, Action::View, "list groups")
            .await?;
        Ok(self.store.list_groups().await?)
    }

    pub async fn get_group(
        &self,
        actor: &Actor,
        id: i64,
    ) -> Result<(GroupDetail, Vec<UserView>), AppError> {
        self.authorize(actor, Section::Groups, Action::View, "view a group")
            .await?;
        let group = self
            .store
            .group_by_id(id)
            .await?
            .ok_or(AppError::NotFound)?;
        let members = self.store.members_of_group(id).await?;
        Ok((group, members.into_iter().map(UserView::from).collect()))
    }

    /// The tags with these ids, or a field error.
    async fn allowed_tags_field(&self, ids: &[i64]) -> Result<Vec<TagRef>, AppError> {
        self.existing_tags(ids)
            .await?
            .map_err(|m| AppError::field("allowed_tags", m))
    }

    pub async fn create_group(
        &self,
        actor: &Actor,
        caption: &str,
        permissions: &PermissionSet,
        allowed_tag_ids: &[i64],
    ) -> Result<i64, AppError> {
        self.authorize(actor, Section::Groups, Action::Create, "create a group")
            .await?;
        let caption = parse_caption(caption).map_err(|m| AppError::field("caption", m))?;
        let permissions = &permissions.clone().with_implied();
        let tags = self.allowed_tags_field(allowed_tag_ids).await?;
        self.guard_group(
            actor,
            permissions,
            &tags,
            &format!("create group {caption}"),
        )
        .await?;
        let event = Event::new(Category::Groups, AuditAction::Add, "Group created")
            .change("caption", "", &caption)
            .change("permissions", "", perm_list(permissions))
            .change("allowed client tags", "", tag_captions(&tags));
        let event = Event {
            target_type: Some("group".into()),
            target_label: Some(caption.clone()),
            ..event
        };
        Ok(self
            .store
            .insert_group(
                &caption,
                permissions,
                &tags.iter().map(|t| t.id).collect::<Vec<_>>(),
                self.entry(Some(actor), None, event),
            )
            .await?)
    }

    /// Saves a group's caption, rights and Allowed Client Tags (the form, based on the
    /// `expected` version it showed, or an API PUT, with `If-Match` if sent). The guards run on
    /// a fresh read; the change is written only if the writing transaction finds the group
    /// still at that version (else checked again on the newer copy, or refused as stale with
    /// `expected`).
    pub async fn update_group(
        &self,
        actor: &Actor,
        id: i64,
        caption: &str,
        permissions: &PermissionSet,
        allowed_tag_ids: &[i64],
        expected: Option<i64>,
    ) -> Result<(), AppError> {
        self.authorize(actor, Section::Groups, Action::Update, "update a group")
            .await?;
        let permissions = &permissions.clone().with_implied();
        until_settled!(
            self,
            "group",
            self.try_update_group(actor, id, caption, permissions, allowed_tag_ids, expected)
        )
    }

    /// One try of [`App::update_group`]: `false` when the group changed after the checks.
    async fn try_update_group(
        &self,
        actor: &Actor,
        id: i64,
        caption: &str,
        permissions: &PermissionSet,
        allowed_tag_ids: &[i64],
        expected: Option<i64>,
    ) -> Result<bool, AppError> {
        let group = self
            .store
            .group_by_id(id)
            .await?
            .ok_or(AppError::NotFound)?;
        if group.builtin {
            let reason = "Administrators is built in and can't be edited";
            self.refused(actor, "update group Administrators", reason)
                .await;
            return Err(AppError::Forbidden(reason.into()));
        }
        let caption = parse_caption(caption).map_err(|m| AppError::field("caption", m))?;
        let tags = self.allowed_tags_field(allowed_tag_ids).await?;
        check_version("group", id, expected, group.version).map_err(rejected)?;
        let attempted = format!("update group {}", group.caption);
        self.guard_group(actor, &group.permissions, &group.allowed_tags, &attempted)
            .await?;
        self.guard_group(actor, permissions, &tags, &attempted)
            .await?;
        self.guard_members(actor, id, &attempted).await?;
        let checked = group.version;
        let at = self.now();
        let entry = self.entry(
            Some(actor),
            None,
            Event::new(
                Category::Groups,
                AuditAction::Update,
                "Group permissions changed",
            ),
        );
        let edit: store::Edit<'_, GroupDetail, GroupChange> = Box::new(move |row| {
            check_version("group", id, expected, row.version)?;
            unchanged_since(checked, row.version)?;
            let event = entry
                .event
                .target("group", id, &caption)
                .change("caption", &row.caption, &caption)
                .change(
                    "permissions",
                    perm_list(&row.permissions),
                    perm_list(permissions),
                )
                .change(
                    "allowed client tags",
                    tag_captions(&row.allowed_tags),
                    tag_captions(&tags),
                );
            if event.changes.is_empty() {
                return Ok(Decision::Keep);
            }
            let change = GroupChange {
                caption: (row.caption != caption).then(|| caption.clone()),
                permissions: (row.permissions != *permissions).then(|| permissions.clone()),
                allowed_tags: (row.allowed_tags != tags)
                    .then(|| tags.iter().map(|t| t.id).collect()),
                at,
            };
            Ok(Decision::Write(
                change,
                store::AuditEntry { event, ..entry },
            ))
        });
        match self.store.update_group(id, edit).await {
            Ok(()) => Ok(true),
            Err(e) if is_retry(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_group(&self, actor: &Actor, id: i64) -> Result<(), AppError> {
        self.authorize(actor, Section::Groups, Action::Delete, "delete a group")
            .await?;
        until_settled!(self, "group", self.try_delete_group(actor, id))
    }

    /// One try of [`App::delete_group`]: `false` when the group changed after the checks.
    async fn try_delete_group(&self, actor: &Actor, id: i64) -> Result<bool, AppError> {
        let group = self
            .store
            .group_by_id(id)
            .await?
            .ok_or(AppError::NotFound)?;
        if group.builtin {
            let reason = "Administrators is built in and can't be deleted";
            self.refused(actor, "delete group Administrators", reason)
                .await;
            return Err(AppError::Forbidden(reason.into()));
        }
        let attempted = format!("delete group {}", group.caption);
        self.guard_group(actor, &group.permissions, &group.allowed_tags, &attempted)
            .await?;
        self.guard_members(actor, id, &attempted).await?;
        let checked = group.version;
        let entry = self.entry(
            Some(actor),
            None,
            Event::new(Category::Groups, AuditAction::Delete, "Group deleted"),
        );
        let edit: store::Edit<'_, GroupDetail, ()> = Box::new(move |row| {
            unchanged_since(checked, row.version)?;
            let event = entry.event.target("group", id, &row.caption).change(
                "permissions",
                perm_list(&row.permissions),
                "",
            );
            Ok(Decision::Write((), store::AuditEntry { event, ..entry }))
        });
        match self.store.delete_group(id, edit).await {
            Ok(()) => Ok(true),
            Err(e) if is_retry(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Export: every group but the built-in one, as pretty JSON.
    pub async fn export_groups(&self, actor: &Actor) -> Result<String, AppError> {
        self.authorize(actor, Section::Groups, Action::View, "export groups")
            .await?;
        let ids: Vec<i64> = self
            .store
            .list_groups()
            .await?
            .into_iter()
            .filter(|g| !g.builtin)
            .map(|g| g.id)
            .collect();
        let groups = self.store.groups_by_ids(&ids).await?;
        let file = GroupsFile {
            version: FILE_VERSION,
            groups: groups
                .iter()
                .map(|g| GroupEntry {
                    caption: g.caption.clone(),
                    permissions: g.permissions.codes(),
                })
                .collect(),
        };
        let e = Event::new(Category::Groups, AuditAction::Export, "Groups exported").change(
            "count",
            "",
            file.groups.len().to_string(),
        );
        self.log(Some(actor), None, e).await;
        serde_json::to_string_pretty(&file).map_err(|e| AppError::Internal(e.to_string()))
    }

    /// Import: the whole file is validated first; on any problem nothing changes and every
    /// problem is listed (in `Invalid["file"]`, one per line).
    pub async fn import_groups(
        &self,
        actor: &Actor,
        bytes: &[u8],
        replace: bool,
    ) -> Result<usize, AppError> {
        self.authorize(actor, Section::Groups, Action::Create, "import groups")
            .await?;
        if replace {
            self.authorize(
                actor,
                Section::Groups,
                Action::Update,
                "import groups replacing existing ones",
            )
            .await?;
        }
        let mut problems = Vec::new();
        if bytes.len() > IMPORT_MAX_BYTES {
            problems.push("The file is larger than 1 MiB".to_string());
        }
        let file: Option<GroupsFile> = if problems.is_empty() {
            serde_json::from_slice(bytes)
                .map_err(|e| problems.push(format!("Not a groups export file: {e}")))
                .ok()
        } else {
            None
        };
        let mut parsed = Vec::new();
        // Refusals of the authority order, kept apart from problems with the file itself.
        let mut escalations = Vec::new();
        // With Replace, a group of the same caption gets the file's rights: the actor must hold
        // the rights it has now, as for an edit.
        let existing = if replace {
            let ids: Vec<i64> = self
                .store
                .list_groups()
                .await?
                .iter()
                .map(|g| g.id)
                .collect();
            self.store.groups_by_ids(&ids).await?
        } else {
            Vec::new()
        };
        if let Some(file) = &file {
            if file.version != FILE_VERSION {
                problems.push(format!("Unsupported file version {}", file.version));
            }
            let mut seen = std::collections::HashSet::new();
            for (i, g) in file.groups.iter().enumerate() {
                let n = i + 1;
                let caption = match parse_caption(&g.caption) {
                    Ok(c) => c,
                    Err(m) => {
                        problems.push(format!("Group {n}: {m}"));
                        continue;
                    }
                };
                if !seen.insert(caption.to_lowercase()) {
                    problems.push(format!(
                        "Group {n}: the caption {caption:?} appears twice in the file"
                    ));
                }
                let mut set = PermissionSet::default();
                for code in &g.permissions {
                    match Permission::from_code(code) {
                        Some(p) => set.insert(p),
                        None if Permission::is_retired(code) => {}
                        None => problems.push(format!(
                            "Group {n} ({caption}): unknown permission {code:?}"
                        )),
                    }
                }
                let set = set.with_implied();
                let replaced = existing
                    .iter()
                    .find(|g| g.caption.to_lowercase() == caption.to_lowercase());
                // A replaced group keeps its Allowed Client Tags; a new one has none (all clients).
                let kept_tags: Vec<i64> = replaced
                    .map(|g| g.allowed_tags.iter().map(|t| t.id).collect())
                    .unwrap_or_default();
                let beyond = actor
                    .authority()
                    .beyond(&group_grant(set.clone(), &kept_tags));
                if !beyond.is_empty() {
                    escalations.push(format!(
                        "Group {n} ({caption}): you can't grant {}",
                        beyond.join("; ")
                    ));
                }
                if let Some(old) = replaced {
                    let held = group_grant(old.permissions.clone(), &kept_tags)
                        .join(&self.members_authority(old.id).await?);
                    let beyond = actor.authority().beyond(&held);
                    if !beyond.is_empty() {
                        escalations.push(format!(
                            "Group {n} ({caption}): it would replace a group that, with its \
                             members, holds {}",
                            beyond.join("; ")
                        ));
                    }
                }
                parsed.push((caption, set));
            }
        }
        if !problems.is_empty() {
            problems.extend(escalations);
            let mut f = FieldErrors::new();
            f.insert("file", problems.join("\n"));
            return Err(AppError::Invalid(f));
        }
        if !escalations.is_empty() {
            let reason = escalations.join("\n");
            self.refused(actor, "import groups", &reason).await;
            return Err(AppError::Forbidden(reason));
        }
        let e = Event::new(Category::Groups, AuditAction::Import, "Groups imported")
            .change("count", "", parsed.len().to_string())
            .change("replace", "", if replace { "Enabled" } else { "Disabled" });
        Ok(self
            .store
            .import_groups(&parsed, replace, self.entry(Some(actor), None, e))
            .await?)
    }
}
