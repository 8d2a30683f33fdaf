//! The Dashboard: figures a back-office team looks at first, each of which the page links to the
//! filtered list it counts. Only what the viewer may see: staff figures with Users › View, client
//! figures with Clients › View (counted within their Allowed Client Tags), sign-ins and the latest
//! changes with Event log › View (the changes masked and scoped as the Event log shows them).
//!
//! The counts are kept for [`FRESH_FOR`] and shared by every viewer of the same scope, so a
//! view costs no count over a million rows; the page says how old they are.

use crate::events::{EventFilter, EventView};
use crate::{Actor, App, AppError};
use domain::client::ClientStatus;
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

/// The counted figures, each kept for [`FRESH_FOR`]: staff and sign-ins once for everyone,
/// clients per scope.
#[derive(Default)]
pub(crate) struct DashboardCache {
    staff: Shelf<StaffCounts>,
    sign_ins: Shelf<Vec<SignInDay>>,
    clients: Shelf<ClientCounts>,
}

/// Counts by key, with when they were made; one count at a time per shelf, so viewers arriving
/// meanwhile wait for it instead of counting too.
struct Shelf<T> {
    entries: Mutex<HashMap<String, Kept<T>>>,
    counting: tokio::sync::Mutex<()>,
}

/// Figures with when they were made (the clock for freshness, the time for the page).
type Kept<T> = (Instant, Timestamp, Arc<T>);

impl<T> Default for Shelf<T> {
    fn default() -> Self {
        Self {
            entries: Default::default(),
            counting: Default::default(),
        }
    }
}

impl<T> Shelf<T> {
    fn fresh(&self, key: &str) -> Option<(Arc<T>, Timestamp)> {
        self.entries
            .lock()
            .unwrap()
            .get(key)
            .filter(|(made, _, _)| made.elapsed() < FRESH_FOR)
            .map(|(_, at, v)| (v.clone(), *at))
    }

    /// The figures under `key`, counted by `count` when none are fresh.
    async fn get(
        &self,
        key: &str,
        at: Timestamp,
        count: impl std::future::Future<Output = Result<T, AppError>>,
    ) -> Result<(Arc<T>, Timestamp), AppError> {
        if let Some(v) = self.fresh(key) {
            return Ok(v);
        }
        let _counting = self.counting.lock().await;
        if let Some(v) = self.fresh(key) {
            return Ok(v);
        }
        let v = Arc::new(count.await?);
        let mut entries = self.entries.lock().unwrap();
        // Scopes nobody has viewed for a while go.
        entries.retain(|_, (made, _, _)| made.elapsed() < FRESH_FOR * 10);
        entries.insert(key.to_string(), (Instant::now(), at, v.clone()));
        Ok((v, at))
    }
}

const COUNTRIES_SHOWN: usize = 8;

impl App {
    /// The viewer's Dashboard: only the sections they may see are counted.
    pub async fn dashboard(&self, actor: &Actor) -> Result<Dashboard, AppError> {
        let now = self.now();
        let cache = &self.dashboard_cache;
        let mut counted_at = now;
        let staff = if actor.can(Section::Users, Action::View) {
            let counted = cache.staff.get("all", now, async {
                Ok(staff_counts(self.store.staff_figures(now).await?))
            });
            Some(shown(&mut counted_at, counted.await?))
        } else {
            None
        };
        let clients = if actor.can(Section::Clients, Action::View) {
            let (key, tags) = match actor.client_scope() {
                ClientScope::All => ("all".to_string(), None),
                ClientScope::Tags(t) => (
                    format!("{t:?}"),
                    Some(t.iter().copied().collect::<Vec<_>>()),
                ),
            };
            let counted = cache.clients.get(&key, now, async {
                Ok(client_counts(
                    self.store.client_figures(tags.as_deref()).await?,
                ))
            });
            Some(shown(&mut counted_at, counted.await?))
        } else {
            None
        };
        let events = actor.can(Section::EventLog, Action::View);
        let sign_ins = if events {
            let today = now.millis().div_euclid(86_400_000);
            let first_day = today - (DAYS - 1);
            let counted = cache.sign_ins.get("all", now, async {
                let from = Timestamp(first_day * 86_400_000);
                let days = self
                    .store
                    .sign_ins_per_day(from, SIGNED_IN, SIGN_IN_FAILED)
                    .await?;
                Ok(every_day(first_day, today, days))
            });
            Some(shown(&mut counted_at, counted.await?))
        } else {
            None
        };
        let latest = if events {
            let mut l = self.list_events(actor, &EventFilter::default()).await?;
            l.truncate(LATEST);
            Some(l)
        } else {
            None
        };
        Ok(Dashboard {
            staff,
            clients,
            sign_ins,
            latest,
            counted_at,
        })
    }
}

/// Figures to show, and the page's "as of" moved back to when they were counted.
fn shown<T: Clone>(counted_at: &mut Timestamp, (v, at): (Arc<T>, Timestamp)) -> T {
    *counted_at = (*counted_at).min(at);
    v.as_ref().clone()
}

fn staff_counts(f: StaffFigures) -> StaffCounts {
    let mut c = StaffCounts {
        locked: f.locked,
        ..Default::default()
    };
    for s in UserStatus::ALL {
        let n = f.groups.iter().filter(|g| g.0 == s).map(|g| g.2).sum();
        c.by_status.push((s, n));
        c.total += n;
    }
    for t in TwoFactor::ALL {
        let n = f.groups.iter().filter(|g| g.1 == t).map(|g| g.2).sum();
        c.by_two_factor.push((t, n));
    }
    c
}

fn client_counts(rows: Vec<(ClientStatus, String, i64)>) -> ClientCounts {
    let mut c = ClientCounts::default();
    for s in ClientStatus::ALL {
        let n = rows.iter().filter(|r| r.0 == s).map(|r| r.2).sum();
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
            .map(|i| (ClientStatus::Active, format!("C{i}"), 100 - i as i64))
            .chain([(ClientStatus::Blocked, "C0".to_string(), 5)])
            .collect();
        let c = client_counts(rows);
        assert_eq!(c.total, (0..12).map(|i| 100 - i).sum::<i64>() + 5);
        assert_eq!(c.by_country[0], ("C0".into(), "C0".into(), 105));
        assert_eq!(c.by_country.len(), COUNTRIES_SHOWN);
        assert_eq!(c.other_countries, (8..12).map(|i| 100 - i).sum::<i64>());
        assert_eq!(c.by_status[1].2, 5);
    }
}
