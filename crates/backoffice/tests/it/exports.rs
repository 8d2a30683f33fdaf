//! Exports that stream (issue 27): client CSV and event-log CSV / JSON lines over more pages than
//! one query reads, every row once and in order, the export logged with its count; and a client
//! that goes away mid-file stops the export (its event says so, with fewer rows than exist).

use crate::clients::demo_seed;
use std::time::{Duration, Instant};
use testkit::pages::*;
use testkit::{db::backends, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The details of the newest event named `name`, as (field, after) pairs.
async fn last_event(t: &TestApp, name: &str) -> Option<Vec<(String, String)>> {
    let store = store::connect(&t.db_url).await.unwrap();
    let events = store
        .list_events(
            &store::EventVisibility {
                viewer_id: 0,
                client_scope: domain::ClientScope::All,
            },
            &store::EventQuery {
                event: Some(name.into()),
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let e = events.into_iter().next()?;
    let details: Vec<serde_json::Value> = serde_json::from_str(&e.details).unwrap();
    Some(
        details
            .iter()
            .map(|c| {
                (
                    c["field"].as_str().unwrap().to_string(),
                    c["after"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
    )
}

fn detail<'a>(details: &'a [(String, String)], field: &str) -> &'a str {
    details
        .iter()
        .find(|(f, _)| f == field)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {field} in {details:?}"))
}

#[tokio::test]
async fn exports_of_many_pages_hold_every_row_once_in_order() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        // 4,500 clients and as many events: three pages of each.
        let out = demo_seed(&t, &["--clients", "4500", "--events", "4500"], "");
        assert!(out.contains("Added 4500 demo client(s)"), "{out}");
        let token = token_for(&t, &admin).await;
        let api = |path: &str| admin.client.get(t.url(path)).bearer_auth(&token).send();

        let r = api("/api/v1/clients/export").await.unwrap();
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        let mut reader = csv::Reader::from_reader(body.as_bytes());
        assert_eq!(reader.headers().unwrap().get(0), Some("ID"));
        let ids: Vec<i64> = reader
            .records()
            .map(|r| r.unwrap()[0].parse().unwrap())
            .collect();
        assert_eq!(ids.len(), 4500, "{backend}");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending, no repeats");
        let logged = last_event(&t, "Clients exported").await.unwrap();
        assert_eq!(detail(&logged, "count"), "4500");
        assert_eq!(detail(&logged, "complete"), "Yes");

        // The event log, newest first, as JSON lines (API) and CSV (page): the same rows.
        let before = last_event(&t, "Event log exported").await;
        assert!(before.is_none());
        let r = api("/api/v1/events/export").await.unwrap();
        assert_eq!(r.headers()["content-type"], "application/x-ndjson");
        let lines: Vec<serde_json::Value> = r
            .text()
            .await
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines.len() > 4500, "{}", lines.len());
        let json_ids: Vec<i64> = lines.iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert!(json_ids.windows(2).all(|w| w[0] > w[1]), "newest first");
        assert_eq!(*json_ids.last().unwrap(), 1, "down to the first event");
        let logged = last_event(&t, "Event log exported").await.unwrap();
        assert_eq!(detail(&logged, "count"), lines.len().to_string());
        assert_eq!(detail(&logged, "complete"), "Yes");

        let csv_page = admin.get("/events/export?format=csv").await;
        assert_eq!(csv_page.status, 200);
        let mut reader = csv::Reader::from_reader(csv_page.body.as_bytes());
        let csv_ids: Vec<i64> = reader
            .records()
            .map(|r| r.unwrap()[0].parse().unwrap())
            .collect();
        // One event more: the JSON export's own.
        assert_eq!(csv_ids.len(), json_ids.len() + 1);
        assert_eq!(csv_ids[1..], json_ids[..]);
    }
}

/// A client that reads the start of a large export and hangs up: the server stops reading the
/// database, and the event says the export was not complete, with fewer rows than exist.
#[tokio::test]
async fn a_client_that_goes_away_stops_the_export() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let out = demo_seed(&t, &["--clients", "30000"], "");
        assert!(out.contains("Added 30000 demo client(s)"), "{out}");
        let token = token_for(&t, &admin).await;

        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        // A small receive window, so the server can't push the whole file into kernel buffers.
        socket.set_recv_buffer_size(4096).unwrap();
        let mut conn = socket.connect(t.addr).await.unwrap();
        conn.write_all(
            format!(
                "GET /api/v1/clients/export HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\r\n",
                t.addr
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut start = vec![0u8; 8192];
        let mut read = 0;
        while read < start.len() {
            let n = conn.read(&mut start[read..]).await.unwrap();
            assert!(n > 0, "the server closed the connection");
            read += n;
        }
        assert!(String::from_utf8_lossy(&start).starts_with("HTTP/1.1 200"));
        drop(conn);

        let deadline = Instant::now() + Duration::from_secs(20);
        let logged = loop {
            if let Some(logged) = last_event(&t, "Clients exported").await {
                break logged;
            }
            assert!(
                Instant::now() < deadline,
                "{backend}: the export never ended"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            detail(&logged, "complete"),
            "No: the client went away",
            "{backend}"
        );
        let sent: usize = detail(&logged, "count").parse().unwrap();
        assert!(
            sent < 30000,
            "{backend}: {sent} rows were read for a client that left"
        );
    }
}
