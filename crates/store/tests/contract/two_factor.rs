//! Second factors' leftovers: ceremonies and set-ups that were never finished.

use crate::support::*;
use domain::Timestamp;
use store::*;

async fn unfinished_ceremonies_and_set_ups_are_purged(b: &'static str) {
    let s = open(b).await;
    let id = add_user(&s, "tf@example.com", vec![1]).await;
    let now = Timestamp::now();
    s.put_ceremony("old", CEREMONY_REGISTER, "state", now.plus_secs(-1))
        .await
        .unwrap();
    s.put_ceremony("live", CEREMONY_SIGN_IN, "state", now.plus_secs(300))
        .await
        .unwrap();
    s.put_totp_enrolment(id, "sealed", now.plus_secs(-2 * 24 * 3600))
        .await
        .unwrap();
    let purged = s
        .purge_two_factor_leftovers(now, now.plus_secs(-24 * 3600))
        .await
        .unwrap();
    assert_eq!(purged, 2, "{b}: the expired ceremony and the stale set-up");
    assert_eq!(
        s.take_ceremony("live", CEREMONY_SIGN_IN, now)
            .await
            .unwrap()
            .as_deref(),
        Some("state"),
        "{b}: a live ceremony stays"
    );
    assert!(s
        .take_ceremony("old", CEREMONY_REGISTER, now.plus_secs(-10))
        .await
        .unwrap()
        .is_none());
    assert!(s.totp_enrolment(id).await.unwrap().is_none());
    // A set-up begun within the day stays.
    s.put_totp_enrolment(id, "sealed", now).await.unwrap();
    s.purge_two_factor_leftovers(now, now.plus_secs(-24 * 3600))
        .await
        .unwrap();
    assert_eq!(
        s.totp_enrolment(id).await.unwrap().as_deref(),
        Some("sealed")
    );
}

testkit::on_each_backend!(unfinished_ceremonies_and_set_ups_are_purged,);
