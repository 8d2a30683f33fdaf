//! The Dashboard: figures a back-office team looks at first, each of which the page links to the
//! filtered list it counts. Only what the viewer may see: staff figures with Users › View, client
//! figures with Clients › View (counted within their Allowed Client Tags), sign-ins and the latest
//! changes with Event log › View (the changes masked and scoped as the Event log shows them).
//!
//! The client figures are kept by the writes (the store reads them, or for a limited viewer an
//! index range per allowed tag), so no view counts a million rows; every answer is still kept
//! for [`FRESH_FOR`] and shared by the viewers of the same scope, and the page says how old it is.

use crate::events::{EventFilter, EventView};
use crate::{Actor, App, AppError};
use domain::client::ClientStatus;
use domain::{Action, ClientScope, Section, Timestamp, TwoFactor, UserStatus};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{SignInDay, StaffFigures};

/// How long counted figures are shown before they are counted again.
pub const FRESH_FOR: Duration = Duration::from_secs(30);
/// Days of sign-ins on the chart (today included).
pub const DAYS: i64 = 30;
/// Latest changes listed.
const LATEST: i64 = 8;
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
    staff: Arc<Shelf<StaffCounts>>,
    sign_ins: Arc<Shelf<Vec<SignInDay>>>,
    clients: Arc<Shelf<ClientCounts>>,
}

/// Counts by key, with when they were made. Only the first view of a key waits for its count
/// (one count at a time, so viewers arriving meanwhile wait for it instead of counting too).
/// After that, figures older than [`FRESH_FOR`] are still shown while one task counts them
/// again in the background: a scoped count still reads every pair of its tags (a fraction of a
/// second at 10M clients), and no viewer should wait for it every half minute. The page says
/// when the figures it shows were counted.
struct Shelf<T> {
    entries: Mutex<HashMap<String, Kept<T>>>,
    /// Keys being counted again in the background.
    recounting: Mutex<HashSet<String>>,
    first_count: tokio::sync::Mutex<()>,
    /// [`FRESH_FOR`] (shorter in tests).
    fresh_for: Duration,
}

/// Figures with when they were made (the clock for freshness, the time for the page).
type Kept<T> = (Instant, Timestamp, Arc<T>);

impl<T> Default for Shelf<T> {
    fn default() -> Self {
        Self {
            entries: Default::default(),
            recounting: Default::default(),
            first_count: Default::default(),
            fresh_for: FRESH_FOR,
        }
    }
}

impl<T: Send + Sync + 'static> Shelf<T> {
    /// The figures under `key` and whether they are fresh.
    fn kept(&self, key: &str) -> Option<(Arc<T>, Timestamp, bool)> {
        self.entries
            .lock()
            .unwrap()
            .get(key)
            .map(|(made, at, v)| (v.clone(), *at, made.elapsed() < self.fresh_for))
    }

    fn keep(&self, key: &str, at: Timestamp, v: Arc<T>) {
        let mut entries = self.entries.lock().unwrap();
        // Scopes nobody has viewed for a while go.
        entries.retain(|_, (made, _, _)| made.elapsed() < self.fresh_for * 10);
        entries.insert(key.to_string(), (Instant::now(), at, v));
    }

    /// The figures under `key`, counted by `count` (made at `at`) when none are kept, or
    /// counted again in the background when the kept ones are no longer fresh.
    async fn get(
        self: &Arc<Self>,
        key: &str,
        at: Timestamp,
        count: impl std::future::Future<Output = Result<T, AppError>> + Send + 'static,
    ) -> Result<(Arc<T>, Timestamp), AppError> {
        if let Some((v, made_at, fresh)) = self.kept(key) {
            if !fresh && self.recounting.lock().unwrap().insert(key.to_string()) {
                let shelf = self.clone();
                let key = key.to_string();
                tokio::spawn(async move {
                    match count.await {
                        Ok(v) => shelf.keep(&key, at, Arc::new(v)),
                        Err(e) => tracing::warn!(error = %e, "dashboard figures not counted again"),
                    }
                    shelf.recounting.lock().unwrap().remove(&key);
                });
            }
            return Ok((v, made_at));
        }
        let _counting = self.first_count.lock().await;
        if let Some((v, made_at, _)) = self.kept(key) {
            return Ok((v, made_at));
        }
        let v = Arc::new(count.await?);
        self.keep(key, at, v.clone());
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
            let store = self.store.clone();
            let counted = cache.staff.get("all", now, async move {
                Ok(staff_counts(store.staff_figures(now).await?))
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
            let store = self.store.clone();
            let counted = cache.clients.get(&key, now, async move {
                Ok(client_counts(store.client_figures(tags.as_deref()).await?))
            });
            Some(shown(&mut counted_at, counted.await?))
        } else {
            None
        };
        let events = actor.can(Section::EventLog, Action::View);
        let sign_ins = if events {
            let today = now.millis().div_euclid(86_400_000);
            let first_day = today - (DAYS - 1);
            let store = self.store.clone();
            let counted = cache.sign_ins.get("all", now, async move {
                let from = Timestamp(first_day * 86_400_000);
                let days = store
                    .sign_ins_per_day(from, SIGNED_IN, SIGN_IN_FAILED)
                    .await?;
                Ok(every_day(first_day, today, days))
            });
            Some(shown(&mut counted_at, counted.await?))
        } else {
            None
        };
        let latest = if events {
            Some(
                self.events_up_to(actor, &EventFilter::default(), LATEST)
                    .await?,
            )
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

    /// Only the first view waits for a count; later ones get the kept figures at once while one
    /// background count replaces them, and a failed recount keeps them.
    #[tokio::test]
    async fn stale_figures_are_shown_while_one_count_runs_again() {
        let shelf = Arc::new(Shelf::<i64> {
            fresh_for: Duration::ZERO,
            ..Default::default()
        });
        let at = |ms| Timestamp(ms);
        let first = shelf.get("k", at(1), async { Ok(1) }).await.unwrap();
        assert_eq!((*first.0, first.1), (1, at(1)));

        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let slow = async move {
            released.await.unwrap();
            Ok(2)
        };
        let stale = shelf.get("k", at(2), slow).await.unwrap();
        assert_eq!(
            (*stale.0, stale.1),
            (1, at(1)),
            "shown at once, with its own time"
        );
        // A second stale view while the recount runs starts no other count.
        let again = shelf
            .get("k", at(3), async { panic!("counted twice at once") })
            .await
            .unwrap();
        assert_eq!(*again.0, 1);

        release.send(()).unwrap();
        let mut seen = 1;
        for _ in 0..200 {
            let (v, _) = shelf.get("k", at(4), async { Ok(3) }).await.unwrap();
            seen = *v;
            if seen != 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            seen == 2 || seen == 3,
            "the recount replaced the figures: {seen}"
        );

        let failed = Arc::new(Shelf::<i64> {
            fresh_for: Duration::ZERO,
            ..Default::default()
        });
        failed.get("k", at(1), async { Ok(7) }).await.unwrap();
        failed
            .get("k", at(2), async { Err(AppError::NotFound) })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            *failed.kept("k").unwrap().0,
            7,
            "a failed recount keeps the figures"
        );
    }

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
