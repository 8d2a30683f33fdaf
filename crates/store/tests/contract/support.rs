//! What every story starts from: a fresh, migrated store, users and events to put in it.

use domain::audit::{AuditAction, Category, Event};
use domain::{IpWhitelist, Timestamp, TwoFactor, UserStatus};
use std::sync::Arc;
use store::*;
use testkit::db::fresh;

pub async fn open(backend: &str) -> Arc<dyn Store> {
    let s = store::connect(&fresh(backend).await).await.unwrap();
    s.migrate().await.unwrap();
    s.ensure_admin_group().await.unwrap();
    s
}

pub fn entry(name: &str) -> AuditEntry {
    AuditEntry {
        at: Timestamp::now(),
        actor_id: None,
        actor_email: Some("test".into()),
        actor_groups: String::new(),
        ip: Some("127.0.0.1".into()),
        event: Event::new(Category::Users, AuditAction::Add, name).change("field", "", "value"),
        idempotency: None,
    }
}

/// An edit that writes `change` whatever the row holds.
pub fn write<R, C: Send + 'static>(change: C, entry: AuditEntry) -> Edit<'static, R, C> {
    Box::new(move |_| Ok(Decision::Write(change, entry)))
}

/// A session of `user_id` that starts at `at`.
pub fn session_record(
    user_id: i64,
    hash: &str,
    stage: SessionStage,
    at: Timestamp,
) -> SessionRecord {
    SessionRecord {
        id_hash: hash.into(),
        key: format!("k{hash}"),
        user_id,
        stage,
        csrf_token: "t".into(),
        created_at: at,
        last_seen_at: at,
        expires_at: at.plus_secs(3600),
        ip: None,
        user_agent: None,
    }
}

pub fn new_user(email: &str, groups: Vec<i64>) -> NewUser {
    NewUser {
        email: email.into(),
        email_key: email.to_lowercase(),
        name: format!("Name of {email}"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        status: UserStatus::Enabled,
        two_factor: TwoFactor::Email,
        mask_data: false,
        ip_whitelist: IpWhitelist::anywhere(),
        must_change_password: true,
        created_by: None,
        group_ids: groups,
        allowed_tag_ids: Vec::new(),
        created_at: Timestamp::now(),
    }
}

/// An unscoped viewer's event visibility.
pub fn everything() -> EventVisibility {
    EventVisibility {
        viewer_id: 0,
        client_scope: domain::ClientScope::All,
    }
}

pub async fn add_user(s: &Arc<dyn Store>, email: &str, groups: Vec<i64>) -> i64 {
    s.insert_user(new_user(email, groups), None, entry("User created"))
        .await
        .unwrap()
}
