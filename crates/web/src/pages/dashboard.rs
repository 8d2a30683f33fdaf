//! The landing page after sign-in: the figures the viewer may see, each a link to the filtered
//! list it counts, a 30-day chart of sign-ins drawn by the server as SVG (bars told apart by
//! pattern and position, not only colour, with the same numbers as a table), and the latest
//! changes from the event log.

use crate::error::WebError;
use crate::layout::Layout;
use crate::pages::render;
use crate::session::Staff;
use crate::AppState;
use app::dashboard::{Dashboard, SIGNED_IN, SIGN_IN_FAILED};
use app::events::EventView;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use domain::Timestamp;

/// The chart's drawing area (SVG user units).
const CHART_W: i64 = 600;
const CHART_H: i64 = 140;
const SLOT: i64 = CHART_W / app::dashboard::DAYS;
const BAR: i64 = 8;

/// One day's two bars, placed.
struct DayBars {
    date: String,
    ok: i64,
    failed: i64,
    x_ok: i64,
    x_failed: i64,
    h_ok: i64,
    h_failed: i64,
    ok_link: String,
    failed_link: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    l: Layout,
    name: String,
    d: Dashboard,
    days: Vec<DayBars>,
    /// The chart's scale: the most sign-ins (or failures) on one day.
    top: i64,
    chart_w: i64,
    chart_h: i64,
    bar: i64,
    counted_at: String,
}

impl DashboardPage {
    fn latest(&self) -> &[EventView] {
        self.d.latest.as_deref().unwrap_or_default()
    }

    /// The page of an event's target, for the kinds that have one.
    fn target_link(&self, e: &EventView) -> Option<String> {
        let id = e.target_id?;
        match e.target_type.as_deref()? {
            "client" => Some(format!("/clients/{id}")),
            "user" => Some(format!("/users/{id}")),
            "group" => Some(format!("/groups/{id}")),
            _ => None,
        }
    }
}

/// The Event log filtered to one event name on one day.
fn events_link(event: &str, date: &str) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("event", event)
        .append_pair("from", date)
        .append_pair("to", date);
    format!("/events?{}", s.finish())
}

fn chart(d: &Dashboard) -> (Vec<DayBars>, i64) {
    let days = d.sign_ins.as_deref().unwrap_or_default();
    let top = days
        .iter()
        .map(|d| d.ok.max(d.failed))
        .max()
        .unwrap_or(0)
        .max(1);
    let height = |n: i64| {
        if n == 0 {
            0
        } else {
            (n * CHART_H / top).max(2)
        }
    };
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let date = Timestamp(day.day * 86_400_000).iso()[..10].to_string();
            let x = i as i64 * SLOT + (SLOT - 2 * BAR) / 2;
            DayBars {
                ok_link: events_link(SIGNED_IN, &date),
                failed_link: events_link(SIGN_IN_FAILED, &date),
                date,
                ok: day.ok,
                failed: day.failed,
                x_ok: x,
                x_failed: x + BAR,
                h_ok: height(day.ok),
                h_failed: height(day.failed),
            }
        })
        .collect();
    (bars, top)
}

pub async fn show(State(state): State<AppState>, staff: Staff) -> Result<Response, WebError> {
    let d = state.app.dashboard(&staff.actor).await?;
    let (days, top) = chart(&d);
    Ok(render(&DashboardPage {
        name: staff.actor.name().to_string(),
        counted_at: d.counted_at.iso(),
        l: staff.layout,
        d,
        days,
        top,
        chart_w: CHART_W,
        chart_h: CHART_H,
        bar: BAR,
    }))
}
