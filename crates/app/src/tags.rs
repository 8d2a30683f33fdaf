//! Clients › Tags: the captions that group clients, and the helpers every form that names tags
//! uses. Tags are not client data, so any viewer of the section sees all of them; but a staff
//! member with Allowed Client Tags renames, deletes, assigns and removes only the tags of their
//! own scope (renaming another desk's tag, or putting it on a client, would change what that
//! desk sees). A tag in anyone's Allowed Client Tags can't be deleted (the store refuses), since
//! its holders would then see every client.

use crate::concurrency::until_settled;
use crate::{Actor, App, AppError};
use domain::audit::{AuditAction, Category, Event};
use domain::tag::parse_caption;
use domain::{Action, Section};
use store::{StoreError, TagRecord, TagRef};

/// Captions joined for an event or a cell: "EU desk, VIP".
pub(crate) fn tag_captions(tags: &[TagRef]) -> String {
    tags.iter()
        .map(|t| t.caption.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every tag's id and caption, remembered for a second: every Clients page offers them (the
/// Tags filter), and a database round trip per page for 50 captions that change once a month
/// is a third of what a scoped page costs PostgreSQL. A change through this instance forgets
/// them at once; another instance's change shows within [`TAG_TTL`]. Only pickers read this;
/// every tag a request names is checked against the database (`existing_tags`).
#[derive(Default)]
pub(crate) struct TagCache(std::sync::Mutex<Option<(std::time::Instant, Vec<TagRef>)>>);

const TAG_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl TagCache {
    fn get(&self) -> Option<Vec<TagRef>> {
        let held = self.0.lock().ok()?;
        let (at, tags) = held.as_ref()?;
        (at.elapsed() < TAG_TTL).then(|| tags.clone())
    }

    fn put(&self, tags: &[TagRef]) {
        if let Ok(mut held) = self.0.lock() {
            *held = Some((std::time::Instant::now(), tags.to_vec()));
        }
    }

    fn forget(&self) {
        if let Ok(mut held) = self.0.lock() {
            *held = None;
        }
    }
}

fn duplicate_caption(e: StoreError) -> AppError {
    match e {
        StoreError::Duplicate { field: "caption" } => {
            AppError::duplicate("caption", "A tag with this caption already exists")
        }
        other => other.into(),
    }
}

impl App {
    /// The tags with these ids, or a message for the field when one doesn't exist.
    pub(crate) async fn existing_tags(
        &self,
        ids: &[i64],
    ) -> Result<Result<Vec<TagRef>, String>, AppError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let found = self.store.tags_by_ids(&ids).await?;
        if found.len() != ids.len() {
            return Ok(Err("One of the chosen tags no longer exists".into()));
        }
        Ok(Ok(found))
    }

    /// Refuses (403, with an event) tags outside the actor's Allowed Client Tags.
    pub(crate) async fn guard_own_tags(
        &self,
        actor: &Actor,
        tags: &[TagRef],
        attempted: &str,
    ) -> Result<(), AppError> {
        let outside: Vec<&str> = tags
            .iter()
            .filter(|t| !actor.client_scope().includes_tag(t.id))
            .map(|t| t.caption.as_str())
            .collect();
        if outside.is_empty() {
            return Ok(());
        }
        let reason = format!(
            "These tags are outside your Allowed Client Tags: {}",
            outside.join(", ")
        );
        self.refused(actor, attempted, &reason).await;
        Err(AppError::Forbidden(reason))
    }

    /// Every tag, for pickers and filters: any viewer of clients (or of users and groups, whose
    /// forms set Allowed Client Tags) may read the captions.
    pub async fn tag_choices(&self, actor: &Actor) -> Result<Vec<TagRef>, AppError> {
        let readers = [
            (Section::ClientTags, Action::View),
            (Section::Clients, Action::View),
            (Section::Users, Action::View),
            (Section::Groups, Action::View),
        ];
        if !readers.iter().any(|(s, a)| actor.can(*s, *a)) {
            self.authorize(actor, Section::ClientTags, Action::View, "list tags")
                .await?;
        }
        if let Some(tags) = self.tag_cache.get() {
            return Ok(tags);
        }
        let tags = self.store.tag_refs().await?;
        self.tag_cache.put(&tags);
        Ok(tags)
    }

    /// The tags a form may offer this actor to put on or take off a client: their scope's.
    pub async fn assignable_tags(&self, actor: &Actor) -> Result<Vec<TagRef>, AppError> {
        let mut tags = self.tag_choices(actor).await?;
        tags.retain(|t| actor.client_scope().includes_tag(t.id));
        Ok(tags)
    }

    /// Clients › Tags.
    pub async fn list_tags(&self, actor: &Actor) -> Result<Vec<TagRecord>, AppError> {
        self.authorize(actor, Section::ClientTags, Action::View, "list tags")
            .await?;
        Ok(self.store.list_tags().await?)
    }

    pub async fn get_tag(&self, actor: &Actor, id: i64) -> Result<TagRecord, AppError> {
        self.authorize(actor, Section::ClientTags, Action::View, "view a tag")
            .await?;
        self.store
            .list_tags()
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or(AppError::NotFound)
    }

    pub async fn create_tag(&self, actor: &Actor, caption: &str) -> Result<i64, AppError> {
        self.authorize(actor, Section::ClientTags, Action::Create, "create a tag")
            .await?;
        let caption =
            parse_caption(caption).map_err(|e| AppError::field("caption", e.to_string()))?;
        let event = Event::new(Category::Clients, AuditAction::Add, "Tag created")
            .change("caption", "", &caption);
        let event = Event {
            target_type: Some("tag".into()),
            target_label: Some(caption.clone()),
            ..event
        };
        let id = self
            .store
            .insert_tag(&caption, self.entry(Some(actor), None, event))
            .await
            .map_err(duplicate_caption)?;
        self.tag_cache.forget();
        Ok(id)
    }

    pub async fn rename_tag(&self, actor: &Actor, id: i64, caption: &str) -> Result<(), AppError> {
        self.authorize(actor, Section::ClientTags, Action::Update, "rename a tag")
            .await?;
        let caption =
            parse_caption(caption).map_err(|e| AppError::field("caption", e.to_string()))?;
        let renamed = until_settled!(self, "tag", self.try_rename_tag(actor, id, &caption));
        self.tag_cache.forget();
        renamed
    }

    /// One try of [`App::rename_tag`]: `false` when the tag was renamed after it was read, so
    /// that the event's "before" is always the caption the rename replaced.
    async fn try_rename_tag(
        &self,
        actor: &Actor,
        id: i64,
        caption: &str,
    ) -> Result<bool, AppError> {
        let tag = self.get_tag(actor, id).await?;
        let old = TagRef {
            id,
            caption: tag.caption.clone(),
        };
        self.guard_own_tags(actor, &[old], &format!("rename tag {}", tag.caption))
            .await?;
        if caption == tag.caption {
            return Ok(true);
        }
        let event = Event::new(Category::Clients, AuditAction::Update, "Tag renamed")
            .target("tag", id, caption)
            .change("caption", &tag.caption, caption);
        match self
            .store
            .rename_tag(
                id,
                &tag.caption,
                caption,
                self.entry(Some(actor), None, event),
            )
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(duplicate_caption(e)),
        }
    }

    /// Deletes the tag and takes it off its clients (the page confirms with their count first).
    pub async fn delete_tag(&self, actor: &Actor, id: i64) -> Result<(), AppError> {
        self.authorize(actor, Section::ClientTags, Action::Delete, "delete a tag")
            .await?;
        let tag = self.get_tag(actor, id).await?;
        let old = TagRef {
            id,
            caption: tag.caption.clone(),
        };
        self.guard_own_tags(actor, &[old], &format!("delete tag {}", tag.caption))
            .await?;
        let entry = self.entry(
            Some(actor),
            None,
            Event::new(Category::Clients, AuditAction::Delete, "Tag deleted"),
        );
        // The event tells the tag as the deleting transaction holds it.
        let edit: store::Edit<'_, TagRecord, ()> = Box::new(move |row| {
            let event = entry
                .event
                .target("tag", id, &row.caption)
                .change("caption", &row.caption, "")
                .change("clients", row.clients.to_string(), "");
            Ok(store::Decision::Write(
                (),
                store::AuditEntry { event, ..entry },
            ))
        });
        let deleted = self.store.delete_tag(id, edit).await;
        self.tag_cache.forget();
        Ok(deleted?)
    }
}
