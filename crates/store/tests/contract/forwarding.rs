//! Forwarding the event log: one instance at a time per destination, a cursor that only its
//! lease holder moves, and only forward.

use crate::support::*;
use domain::Timestamp;

async fn one_forwarder_at_a_time_and_the_cursor_only_moves_forward(b: &'static str) {
    let s = open(b).await;
    let now = Timestamp::now();
    let lease = |secs| now.plus_secs(secs);
    // The first taker starts the destination at the given cursor.
    assert_eq!(
        s.take_forwarding_lease("syslog", "a", now, lease(30), 7)
            .await
            .unwrap(),
        Some(7),
        "{b}"
    );
    // Held: another instance doesn't get it; the holder renews it.
    assert_eq!(
        s.take_forwarding_lease("syslog", "b", now, lease(30), 0)
            .await
            .unwrap(),
        None,
        "{b}"
    );
    assert_eq!(
        s.take_forwarding_lease("syslog", "a", now, lease(30), 0)
            .await
            .unwrap(),
        Some(7)
    );
    // Only the holder moves the cursor, and only forward.
    assert!(!s.forwarding_delivered("syslog", "b", 9, now).await.unwrap());
    assert!(s.forwarding_delivered("syslog", "a", 9, now).await.unwrap());
    assert!(!s.forwarding_delivered("syslog", "a", 8, now).await.unwrap());
    s.forwarding_failed("syslog", "a", "connection refused", now)
        .await
        .unwrap();
    s.forwarding_failed("syslog", "b", "not the holder", now)
        .await
        .unwrap();
    let states = s.forwarding_states().await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(
        (
            states[0].cursor,
            states[0].failures,
            states[0].last_error.as_deref()
        ),
        (9, 1, Some("connection refused")),
        "{b}"
    );
    // Expired: another instance takes over where the cursor stands.
    assert_eq!(
        s.take_forwarding_lease("syslog", "b", lease(31), lease(61), 0)
            .await
            .unwrap(),
        Some(9),
        "{b}"
    );
    assert!(!s
        .forwarding_delivered("syslog", "a", 10, now)
        .await
        .unwrap());
    assert!(s
        .forwarding_delivered("syslog", "b", 10, now)
        .await
        .unwrap());
    // Past its lease, not even the last holder moves the cursor.
    assert!(!s
        .forwarding_delivered("syslog", "b", 11, lease(62))
        .await
        .unwrap());
    let state = &s.forwarding_states().await.unwrap()[0];
    assert_eq!(
        (state.cursor, state.failures, state.last_error.clone()),
        (10, 0, None)
    );
    // Destinations are independent.
    assert_eq!(
        s.take_forwarding_lease("webhook", "a", now, lease(30), 0)
            .await
            .unwrap(),
        Some(0)
    );
}

/// Racing for a free lease, exactly one instance gets it.
async fn a_free_lease_goes_to_one_of_many(b: &'static str) {
    let s = open(b).await;
    let now = Timestamp::now();
    let mut tries = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tries.push(tokio::spawn(async move {
            s.take_forwarding_lease("webhook", &format!("i{i}"), now, now.plus_secs(30), 0)
                .await
                .unwrap()
                .is_some()
        }));
    }
    let mut won = 0;
    for t in tries {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1, "{b}");
}

testkit::on_each_backend!(
    one_forwarder_at_a_time_and_the_cursor_only_moves_forward,
    a_free_lease_goes_to_one_of_many,
);
