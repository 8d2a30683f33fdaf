//! Sessions and one-time codes.

use crate::support::*;
use domain::Timestamp;
use store::*;

async fn sessions_and_codes(b: &'static str) {
    let s = open(b).await;
    let id = add_user(&s, "ses@example.com", vec![1]).await;
    let now = Timestamp::now();
    let session = |hash: &str, stage| session_record(id, hash, stage, now);
    s.insert_session(&session("a", SessionStage::AwaitingCode))
        .await
        .unwrap();
    s.put_code(&CodeRecord {
        session_hash: "a".into(),
        user_id: id,
        code_hash: "h".into(),
        expires_at: now.plus_secs(600),
        failures: 0,
        created_at: now,
    })
    .await
    .unwrap();
    assert_eq!(s.code_failed("a").await.unwrap(), 1);
    let mut takes = Vec::new();
    for _ in 0..10 {
        let s = s.clone();
        takes.push(tokio::spawn(async move {
            s.take_code("a", "h", now).await.unwrap()
        }));
    }
    let mut ok = 0;
    for t in takes {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 1, "{b}: a code is consumed exactly once");
    assert_eq!(s.reserve_attempt(id, now).await.unwrap(), Some(1));
    let events_before = s.chain_head().await.unwrap().0;
    s.open_session(
        Some("a"),
        &session("b", SessionStage::Full),
        entry("Signed in"),
    )
    .await
    .unwrap();
    assert!(s.session("a").await.unwrap().is_none());
    let u = s.user_by_id(id).await.unwrap().unwrap();
    assert_eq!((u.failed_attempts, u.last_sign_in_at), (0, Some(now)));
    assert_eq!(s.chain_head().await.unwrap().0, events_before + 1);
    // The pre-session is gone: nothing is stored, not even the event.
    assert!(matches!(
        s.open_session(
            Some("a"),
            &session("c", SessionStage::Full),
            entry("Signed in")
        )
        .await,
        Err(StoreError::NotFound)
    ));
    assert!(s.session("c").await.unwrap().is_none());
    assert_eq!(s.chain_head().await.unwrap().0, events_before + 1);
    // An unknown user: nothing is stored either.
    let stranger = session_record(id + 1000, "e", SessionStage::Full, now);
    assert!(matches!(
        s.open_session(None, &stranger, entry("Signed in")).await,
        Err(StoreError::NotFound)
    ));
    assert!(s.session("e").await.unwrap().is_none(), "{b}");
    assert_eq!(s.chain_head().await.unwrap().0, events_before + 1, "{b}");
    s.insert_session(&session("d", SessionStage::Full))
        .await
        .unwrap();
    assert_eq!(s.sessions_of_user(id).await.unwrap().len(), 2);
    assert_eq!(s.delete_sessions_of_user(id, Some("b")).await.unwrap(), 1);
    assert!(s.session("b").await.unwrap().is_some());
    assert!(s.delete_user_session(id, "kb").await.unwrap());
    assert!(s.session("b").await.unwrap().is_none());
}

testkit::on_each_backend!(sessions_and_codes,);
