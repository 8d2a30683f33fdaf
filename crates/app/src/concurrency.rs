//! Edits made together: the read-modify-write each use case hands the store, the version an
//! edit was based on (a form's hidden field, an API `If-Match`), and who changed a record since.
//! Also the API's `Idempotency-Key` claims, kept in the database for every instance.

use crate::{App, AppError, Stale};
use domain::Timestamp;
use store::{AuditEntry, Claim, Decision, Edit, EventQuery};

/// How many times an edit whose checks were made on a row that changed before the write is
/// tried again from the start (each try reads the row anew). Concurrent edits of one user or
/// group are rare; a writer that loses this many races in a row answers 409 ("try again").
pub(crate) const TRIES: usize = 20;

/// How long an Idempotency-Key and its answer are kept.
const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;
/// A claim whose request changed nothing and didn't answer in this time belongs to an instance
/// that stopped: the same request may claim the key again (longer than any request can take,
/// the SMTP timeout included).
const IDEMPOTENCY_STALE_SECS: i64 = 10 * 60;

/// Tries an edit until it is written on the copy it was checked on: `$attempt` is an
/// expression giving a future of `Result<bool, AppError>`, `false` when the row changed after
/// the checks (then it is evaluated again, at most [`TRIES`] times). A stale edit's error says
/// who changed the record and when.
macro_rules! until_settled {
    ($app:expr, $what:literal, $attempt:expr) => {{
        let mut outcome = Err($crate::AppError::Conflict(
            concat!(
                "The ",
                $what,
                " kept changing while this edit was checked; try again"
            )
            .into(),
        ));
        for _ in 0..$crate::concurrency::TRIES {
            match $attempt.await {
                Ok(true) => {
                    outcome = Ok(());
                    break;
                }
                Ok(false) => continue,
                Err(e) => {
                    outcome = Err($app.explain_stale(e).await);
                    break;
                }
            }
        }
        outcome
    }};
}
pub(crate) use until_settled;

/// The edit's checks (guards, validation) were made on an older copy of the row than the one
/// the transaction holds: the use case starts again from a fresh read.
#[derive(Debug, thiserror::Error)]
#[error("the record changed while the edit was being checked")]
pub(crate) struct Retry;

/// An edit that writes `change` and `entry` whatever the row holds (the change is absolute:
/// a new password, ending sessions, an unlock).
pub(crate) fn write<'a, R, C: Send + 'a>(change: C, entry: AuditEntry) -> Edit<'a, R, C> {
    Box::new(move |_| Ok(Decision::Write(change, entry)))
}

/// The rejection that starts a use case over, when the row's version is no longer `checked`.
pub(crate) fn unchanged_since(checked: i64, now: i64) -> Result<(), store::Rejection> {
    if checked == now {
        Ok(())
    } else {
        Err(Box::new(Retry))
    }
}

/// A use case's refusal, carried through the store as a rejection, back as itself.
pub(crate) fn rejected(r: store::Rejection) -> AppError {
    AppError::from(store::StoreError::Rejected(r))
}

/// True when a store error is [`Retry`].
pub(crate) fn is_retry(e: &store::StoreError) -> bool {
    matches!(e, store::StoreError::Rejected(r) if r.is::<Retry>())
}

/// What an edit based on version `expected` of a record now at `version` is refused with, as
/// a rejection the store carries back (filled in with who and when by [`App::explain_stale`]).
pub(crate) fn check_version(
    kind: &'static str,
    id: i64,
    expected: Option<i64>,
    version: i64,
) -> Result<(), store::Rejection> {
    match expected {
        Some(v) if v != version => Err(Box::new(AppError::Stale(Stale {
            kind,
            id,
            version,
            changed_by: None,
            changed_at: None,
        }))),
        _ => Ok(()),
    }
}

impl App {
    /// Names who made the latest change of the record a stale edit was refused for, and when,
    /// from the event log; other errors pass through.
    pub(crate) async fn explain_stale(&self, e: AppError) -> AppError {
        let AppError::Stale(mut stale) = e else {
            return e;
        };
        // The record is one the actor may edit (the scope was checked), so its latest event is
        // one they may see.
        let everything = store::EventVisibility {
            viewer_id: 0,
            client_scope: domain::ClientScope::All,
        };
        let query = EventQuery {
            target_type: Some(stale.kind.to_string()),
            target_id: Some(stale.id),
            limit: 1,
            ..Default::default()
        };
        if let Ok(Some(latest)) = self
            .store
            .list_events(&everything, &query)
            .await
            .map(|v| v.into_iter().next())
        {
            stale.changed_by = latest.actor_email;
            stale.changed_at = Some(latest.at);
        }
        AppError::Stale(stale)
    }

    /// Claims an API request's Idempotency-Key (`scope`: the caller's key) for the request
    /// whose hash is `request_hash`, or says what became of the first request with it.
    pub async fn claim_idempotency(
        &self,
        scope: &str,
        request_hash: &str,
    ) -> Result<Claim, AppError> {
        let now = self.now();
        Ok(self
            .store
            .claim_idempotency(
                scope,
                request_hash,
                now,
                now.plus_secs(-IDEMPOTENCY_STALE_SECS),
                now.plus_secs(-IDEMPOTENCY_TTL_SECS),
            )
            .await?)
    }

    /// Records the answer a claimed request got, for its retries.
    pub async fn finish_idempotency(
        &self,
        scope: &str,
        status: u16,
        content_type: &str,
        body: &str,
    ) -> Result<(), AppError> {
        Ok(self
            .store
            .finish_idempotency(scope, status, content_type, body)
            .await?)
    }

    /// Frees the key of a request that got no answer worth replaying (unless its change
    /// committed, which the store knows).
    pub async fn release_idempotency(&self, scope: &str) -> Result<(), AppError> {
        Ok(self.store.release_idempotency(scope).await?)
    }
}

/// When an email reservation made for a create lapses: past the SMTP timeout (at most five
/// minutes), so it outlives the conversation it covers.
pub(crate) fn reservation_until(now: Timestamp) -> Timestamp {
    now.plus_secs(10 * 60)
}
