//! The Dashboard: figures a back-office team looks at first, each of which the page links to the
//! filtered list it counts. Only what the viewer may see: staff figures with Users › View, client
//! figures with Clients › View (counted within their Allowed Client Tags), sign-ins and the latest
//! changes with Event log › View (the changes masked and scoped as the Event log shows them).
//!
//! The counts are kept for [`FRESH_FOR`] and shared by every viewer of the same scope, so a
//! view costs no count over a million rows; the page says how old they are.

use crate::events::{EventFilter, EventView};
use crate::{Actor, App, AppError};
use domain::{Action, ClientScope, Section, Timestamp, TwoFactor, UserStatus};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{SignInDay, StaffFigures};

/// How long counted figures are shown before they are counted again.
pub const FRESH_FOR: Duration = Duration::from_secs(30);
/// Days of sign-ins on the chart (today included).
pub const DAYS: i64 = 30;
/// Latest changes listed.
const LATEST: usize = 8;
/// The event names the sign-in chart counts.
pub const SIGNED_IN: &str = "Signed in";
pub const SIGN_IN_FAILED: &str = "Sign-in failed";

/// Staff accounts, as counted.
#[derive(Debug, Clone, Default)]
pub struct StaffCounts {
    pub by_status: Vec<(UserStatus, i64)>,
    pub by_two_factor: Vec<(TwoFactor, i64)>,
    pub locked: i64,
    pub total: i64,
}

/// Clients, as counted (within the viewer's scope).
#[derive(Debug, Clone, Default)]
pub struct ClientCounts {
    /// (status code, label, clients).
    pub by_status: Vec<(String, String, i64)>,
    /// (country code, name, clients), most first; the rest are summed in `other_countries`.
    pub by_country: Vec<(String, String, i64)>,
    pub other_countries: i64,
    pub total: i64,
}

/// What the viewer's Dashboard shows; a section is `None` when they may not see it.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub staff: Option<StaffCounts>,
    pub clients: Option<ClientCounts>,
    /// One entry per day, oldest first, days without sign-ins included.
    pub sign_ins: Option<Vec<SignInDay>>,
    pub latest: Option<Vec<EventView>>,
    /// When the counts were made.
    pub counted_at: Timestamp,
}

/// Counted figures by scope ("all" or the scope's tags), with when they were counted.
#[derive(Default)]
pub(crate) struct DashboardCache {
    entries: Mutex<HashMap<String, (Instant, Arc<Counted>)>>,
    /// One count at a time: viewers arriving meanwhile wait for it instead of counting too.
    counting: tokio::sync::Mutex<()>,
}

struct Counted {
    staff: StaffCounts,
    clients: ClientCounts,
    sign_ins: Vec<SignInDay>,
    at: Timestamp,
}

const COUNTRIES_SHOWN: usize = 8;

impl App {
    pub async fn dashboard(&self, actor: &Actor) -> Result<Dashboard, AppError> {
        let counted = self.counted(actor.client_scope()).await?;
        let events = actor.can(Section::EventLog, Action::View);
        let latest = if events {
            let mut l = self.list_events(actor, &EventFilter::default()).await?;
            l.truncate(LATEST);
            Some(l)
        } else {
            None
        };
        Ok(Dashboard {
            staff: actor
                .can(Section::Users, Action::View)
                .then(|| counted.staff.clone()),
            clients: actor
                .can(Section::Clients, Action::View)
                .then(|| counted.clients.clone()),
            sign_ins: events.then(|| counted.sign_ins.clone()),
            latest,
            counted_at: counted.at,
        })
    }

    async fn counted(&self, scope: &ClientScope) -> Result<Arc<Counted>, AppError> {
        let key = match scope {
            ClientScope::All => "all".to_string(),
            ClientScope::Tags(t) => format!("{t:?}"),
        };
        let fresh = |cache: &DashboardCache| {
            cache
                .entries
                .lock()
                .unwrap()
                .get(&key)
                .filter(|(at, _)| at.elapsed() < FRESH_FOR)
                .map(|(_, c)| c.clone())
        };
        if let Some(c) = fresh(&self.dashboard_cache) {
            return Ok(c);
        }
        let _counting = self.dashboard_cache.counting.lock().await;
        if let Some(c) = fresh(&self.dashboard_cache) {
            return Ok(c);
        }
        let now = self.now();
        let tags: Option<Vec<i64>> = match scope {
            ClientScope::All => None,
            ClientScope::Tags(t) => Some(t.iter().copied().collect()),
        };
        let today = now.millis().div_euclid(86_400_000);
        let first_day = today - (DAYS - 1);
        let counted = Arc::new(Counted {
            staff: staff_counts(self.store.staff_figures(now).await?),
            clients: client_counts(self.store.client_figures(tags.as_deref()).await?),
            sign_ins: every_day(
                first_day,
                today,
                self.store
                    .sign_ins_per_day(Timestamp(first_day * 86_400_000), SIGNED_IN, SIGN_IN_FAILED)
                    .await?,
            ),
            at: now,
        });
        let mut entries = self.dashboard_cache.entries.lock().unwrap();
        // Scopes nobody has viewed for a while go.
        entries.retain(|_, (at, _)| at.elapsed() < FRESH_FOR * 10);
        entries.insert(key, (Instant::now(), counted.clone()));
        Ok(counted)
    }
}

fn staff_counts(f: StaffFigures) -> StaffCounts {
    let mut c = StaffCounts {
        locked: f.locked,
        ..Default::default()
    };
    for s in UserStatus::ALL {
        let n = f
            .groups
            .iter()
            .filter(|g| g.0 == s.code())
            .map(|g| g.2)
            .sum();
        c.by_status.push((s, n));
        c.total += n;
    }
    for t in TwoFactor::ALL {
        let n = f
            .groups
            .iter()
            .filter(|g| g.1 == t.code())
            .map(|g| g.2)
            .sum();
        c.by_two_factor.push((t, n));
    }
    c
}

fn client_counts(rows: Vec<(String, String, i64)>) -> ClientCounts {
    let mut c = ClientCounts::default();
    for s in domain::client::ClientStatus::ALL {
        let n = rows.iter().filter(|r| r.0 == s.code()).map(|r| r.2).sum();
        c.by_status.push((s.code().into(), s.label().into(), n));
        c.total += n;
    }
    let mut countries: HashMap<&str, i64> = HashMap::new();
    for r in &rows {
        *countries.entry(r.1.as_str()).or_default() += r.2;
    }
    let mut countries: Vec<_> = countries.into_iter().collect();
    countries.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (i, (code, n)) in countries.into_iter().enumerate() {
        if i < COUNTRIES_SHOWN {
            let name = domain::client::country_name(code).unwrap_or(code);
            c.by_country.push((code.into(), name.into(), n));
        } else {
            c.other_countries += n;
        }
    }
    c
}

/// The counted days with the days nobody signed in on filled in, `first` to `last`.
fn every_day(first: i64, last: i64, counted: Vec<SignInDay>) -> Vec<SignInDay> {
    (first..=last)
        .map(|day| {
            counted
                .iter()
                .find(|d| d.day == day)
                .copied()
                .unwrap_or(SignInDay {
                    day,
                    ok: 0,
                    failed: 0,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_day_of_the_window_is_there_once() {
        let d = every_day(
            10,
            14,
            vec![
                SignInDay {
                    day: 11,
                    ok: 3,
                    failed: 1,
                },
                SignInDay {
                    day: 14,
                    ok: 1,
                    failed: 0,
                },
            ],
        );
        assert_eq!(
            d.iter().map(|d| d.day).collect::<Vec<_>>(),
            [10, 11, 12, 13, 14]
        );
        assert_eq!((d[1].ok, d[1].failed, d[2].ok), (3, 1, 0));
    }

    #[test]
    fn countries_past_the_first_few_are_summed() {
        let rows: Vec<_> = (0..12)
            .map(|i| ("active".to_string(), format!("C{i}"), 100 - i as i64))
            .chain([("blocked".to_string(), "C0".to_string(), 5)])
            .collect();
        let c = client_counts(rows);
        assert_eq!(c.total, (0..12).map(|i| 100 - i).sum::<i64>() + 5);
        assert_eq!(c.by_country[0], ("C0".into(), "C0".into(), 105));
        assert_eq!(c.by_country.len(), COUNTRIES_SHOWN);
        assert_eq!(c.other_countries, (8..12).map(|i| 100 - i).sum::<i64>());
        assert_eq!(c.by_status[1].2, 5);
    }
}
