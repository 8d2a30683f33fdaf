//! The event log: one chain, whoever writes, and time filters that find every event.

use crate::support::*;
use domain::Timestamp;
use store::*;

async fn the_event_chain_links_every_row_even_with_concurrent_writers(b: &'static str) {
    let s = open(b).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.append_event(entry(&format!("event {i}"))).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows = s.all_events(0, 1000).await.unwrap();
    assert_eq!(rows.len(), 16);
    let mut state = (store::GENESIS.to_string(), 1);
    assert_eq!(
        store::verify_chain(&mut state, &rows),
        None,
        "{b}: concurrent appends keep the chain linear"
    );
    assert_eq!(s.chain_head().await.unwrap(), (16, rows[15].hash.clone()));
    let mut forged = rows.clone();
    forged[3].details = "[]".into();
    let mut state = (store::GENESIS.to_string(), 1);
    assert_eq!(
        store::verify_chain(&mut state, &forged),
        Some(ChainReport::Broken {
            id: 4,
            reason: "content does not match its hash".into()
        })
    );
}

async fn bulk_appends_continue_the_chain(b: &'static str) {
    let s = open(b).await;
    s.append_event(entry("first")).await.unwrap();
    s.append_events((0..1200).map(|i| entry(&format!("bulk {i}"))).collect())
        .await
        .unwrap();
    s.append_event(entry("last")).await.unwrap();
    let rows = s.all_events(0, 5000).await.unwrap();
    assert_eq!(rows.len(), 1202);
    let mut state = (store::GENESIS.to_string(), 1);
    assert_eq!(store::verify_chain(&mut state, &rows), None, "{b}");
    assert_eq!(
        s.chain_head().await.unwrap(),
        (1202, rows[1201].hash.clone())
    );
}

/// The time filter finds every event in the range, also one committed after a later-timed event
/// (its transaction waited on SMTP): ids follow commits, times are taken before them.
async fn time_filters_find_events_committed_out_of_time_order(b: &'static str) {
    const MIN: i64 = 60_000;
    let (from, to) = (
        Timestamp(1_780_000_000_000),
        Timestamp(1_780_000_000_000 + 60 * MIN),
    );
    let at = |t: Timestamp, name: &str| AuditEntry {
        at: t,
        ..entry(name)
    };
    let s = open(b).await;
    // Committed in this order (ids 1..=6), timed out of order around both bounds.
    s.append_event(at(Timestamp(from.0 - 30 * MIN), "long before"))
        .await
        .unwrap();
    s.append_event(at(
        Timestamp(from.0 + 1000),
        "just after from, committed first",
    ))
    .await
    .unwrap();
    s.append_event(at(Timestamp(from.0 - MIN), "before from, committed late"))
        .await
        .unwrap();
    s.append_event(at(Timestamp(to.0 + 5 * MIN), "after to, committed early"))
        .await
        .unwrap();
    s.append_event(at(Timestamp(to.0 - 1000), "just before to, committed late"))
        .await
        .unwrap();
    s.append_event(at(Timestamp(to.0 + 30 * MIN), "long after"))
        .await
        .unwrap();
    let names = |q: EventQuery| {
        let s = s.clone();
        async move {
            let rows = s.list_events(&everything(), &q).await.unwrap();
            rows.into_iter().map(|e| e.event).collect::<Vec<_>>()
        }
    };
    let query = |from, to| EventQuery {
        from,
        to,
        limit: 50,
        ..Default::default()
    };
    assert_eq!(
        names(query(Some(from), Some(to))).await,
        [
            "just before to, committed late",
            "just after from, committed first"
        ],
        "{b}"
    );
    assert_eq!(
        names(query(Some(from), None)).await,
        [
            "long after",
            "just before to, committed late",
            "after to, committed early",
            "just after from, committed first"
        ],
        "{b}"
    );
    assert_eq!(
        names(query(None, Some(to))).await,
        [
            "just before to, committed late",
            "before from, committed late",
            "just after from, committed first",
            "long before"
        ],
        "{b}"
    );
    assert!(names(query(Some(Timestamp(to.0 + 60 * MIN)), None))
        .await
        .is_empty());
}

/// The Event log's keyset both ways: newest first before a cursor, oldest first after one (or
/// from the oldest end), always the limit's worth of rows next to the cursor.
async fn the_log_reads_its_keyset_both_ways(b: &'static str) {
    let s = open(b).await;
    s.append_events((1..=10).map(|i| entry(&format!("e{i}"))).collect())
        .await
        .unwrap();
    let ids = |q: EventQuery| {
        let s = s.clone();
        async move {
            let rows = s.list_events(&everything(), &q).await.unwrap();
            rows.into_iter().map(|e| e.id).collect::<Vec<_>>()
        }
    };
    let page = |before_id, after_id, oldest_first| EventQuery {
        before_id,
        after_id,
        oldest_first,
        limit: 3,
        ..Default::default()
    };
    assert_eq!(
        ids(page(None, None, false)).await,
        [10, 9, 8],
        "{b}: newest"
    );
    assert_eq!(
        ids(page(Some(8), None, false)).await,
        [7, 6, 5],
        "{b}: next"
    );
    assert_eq!(
        ids(page(None, Some(4), true)).await,
        [5, 6, 7],
        "{b}: previous"
    );
    assert_eq!(
        ids(page(None, None, true)).await,
        [1, 2, 3],
        "{b}: last (oldest)"
    );
}

testkit::on_each_backend!(
    the_event_chain_links_every_row_even_with_concurrent_writers,
    bulk_appends_continue_the_chain,
    time_filters_find_events_committed_out_of_time_order,
    the_log_reads_its_keyset_both_ways,
);
