//! Groups: the last administrator, imports.

use crate::support::*;
use domain::{Permission, PermissionSet, Timestamp, UserStatus};
use store::*;

async fn the_last_enabled_administrator_cannot_be_removed(b: &'static str) {
    let s = open(b).await;
    let a = add_user(&s, "a@example.com", vec![1]).await;
    let c = add_user(&s, "c@example.com", vec![1]).await;
    let disable = || UserChange {
        status: Some(UserStatus::Disabled),
        at: Timestamp::now(),
        ..Default::default()
    };
    s.update_user(a, write(disable(), entry("User disabled")))
        .await
        .unwrap();
    assert!(
        matches!(
            s.update_user(c, write(disable(), entry("x"))).await,
            Err(StoreError::Conflict(_))
        ),
        "{b}"
    );
    let regroup = UserChange {
        group_ids: Some(vec![]),
        at: Timestamp::now(),
        ..Default::default()
    };
    assert!(matches!(
        s.update_user(c, write(regroup, entry("x"))).await,
        Err(StoreError::Conflict(_))
    ));
    // Masked, an administrator no longer holds everything: the last unmasked one stays so.
    let mask = UserChange {
        mask_data: Some(true),
        at: Timestamp::now(),
        ..Default::default()
    };
    assert!(
        matches!(
            s.update_user(c, write(mask, entry("x"))).await,
            Err(StoreError::Conflict(_))
        ),
        "{b}"
    );
    assert_eq!(s.count_enabled_admins().await.unwrap(), 1);
}

async fn groups_import_replaces_or_suffixes_in_one_transaction(b: &'static str) {
    let s = open(b).await;
    let mut p = PermissionSet::default();
    p.insert(Permission::new(
        domain::Section::Clients,
        domain::Action::View,
    ));
    s.insert_group("Desk", &p, &[], entry("Group created"))
        .await
        .unwrap();
    let file = vec![
        ("Desk".to_string(), PermissionSet::default()),
        ("New".to_string(), p.clone()),
    ];
    s.import_groups(&file, false, entry("Groups imported"))
        .await
        .unwrap();
    s.import_groups(&file, false, entry("Groups imported"))
        .await
        .unwrap();
    let captions: Vec<String> = s
        .list_groups()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.caption)
        .collect();
    assert_eq!(
        captions,
        [
            "Administrators",
            "Desk",
            "Desk (1)",
            "Desk (2)",
            "New",
            "New (1)"
        ],
        "{b}"
    );
    s.import_groups(&file, true, entry("Groups imported"))
        .await
        .unwrap();
    assert_eq!(
        s.list_groups().await.unwrap().len(),
        6,
        "replace adds nothing"
    );
    let desk = s
        .list_groups()
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.caption == "Desk")
        .unwrap();
    assert!(s
        .group_by_id(desk.id)
        .await
        .unwrap()
        .unwrap()
        .permissions
        .is_empty());
    let admins = vec![("Administrators".to_string(), PermissionSet::default())];
    assert!(
        s.import_groups(&admins, true, entry("x")).await.is_err(),
        "the built-in group is never replaced"
    );
    assert_eq!(
        s.list_groups().await.unwrap().len(),
        6,
        "the failed import changed nothing"
    );
}

testkit::on_each_backend!(
    the_last_enabled_administrator_cannot_be_removed,
    groups_import_replaces_or_suffixes_in_one_transaction,
);
