//! The password step's first statement: the address's attempt count, the account and the
//! attempt's reservation, in one statement or one call.

use super::users::{user_row, NOT_LOCKED, RESERVE_ATTEMPT, USER_COLS, USER_COLS_BUT_ATTEMPTS};
use super::{BackendStore, DbRow, DIALECT};
use crate::*;
use async_trait::async_trait;
use const_format::formatcp;
use domain::Timestamp;
use sqlx::Row;

/// Counts an attempt of address `$3` at `$2`, starting a new window when the last one has
/// ended. Both assignments read the row as it was.
pub(super) const COUNT_ADDRESS: &str = formatcp!(
    "INSERT INTO sign_in_addresses (address, window_start, attempts) \
     SELECT $3, $2, 1 WHERE TRUE {SYNC} \
     ON CONFLICT (address) DO UPDATE SET \
     window_start = CASE WHEN sign_in_addresses.window_start <= $2 - {ADDRESS_WINDOW_MILLIS} THEN $2 \
     ELSE sign_in_addresses.window_start END, \
     attempts = CASE WHEN sign_in_addresses.window_start <= $2 - {ADDRESS_WINDOW_MILLIS} THEN 1 \
     ELSE sign_in_addresses.attempts + 1 END",
    SYNC = DIALECT.reservation_commits_without_waiting,
);
/// The account with email key `$1`, whichever it is (or none): NULL user columns then.
pub(super) const ACCOUNT_JOIN: &str =
    "LEFT JOIN (users u LEFT JOIN users c ON c.id = u.created_by) ON u.email_key = $1";
/// Reserves an attempt on the account with email key `$1`, if it can be signed in to.
pub(super) const RESERVE: &str = formatcp!(
    "UPDATE users {RESERVE_ATTEMPT} WHERE email_key = $1 AND status = 'enabled' AND {NOT_LOCKED}"
);

/// The password step's first statement: counts the attempt against the address, finds the
/// account and reserves the attempt against it.
pub(super) const SIGN_IN: &str = if DIALECT.data_modifying_with {
    // The outer SELECT sees the users row as it was before the reservation, so the counters
    // come from the reservation's own RETURNING when it reserved.
    formatcp!(
        "WITH counted AS ({COUNT_ADDRESS} RETURNING window_start, attempts), \
         reserved AS ({RESERVE} AND (SELECT attempts FROM counted) <= $4 \
         RETURNING failed_attempts, locked_until) \
         SELECT counted.window_start AS address_window_start, counted.attempts AS address_attempts, \
         (SELECT failed_attempts FROM reserved) AS reserved_attempt, {USER_COLS_BUT_ATTEMPTS}, \
         COALESCE((SELECT failed_attempts FROM reserved), u.failed_attempts) AS failed_attempts, \
         CASE WHEN EXISTS (SELECT 1 FROM reserved) THEN (SELECT locked_until FROM reserved) \
         ELSE u.locked_until END AS locked_until \
         FROM counted {ACCOUNT_JOIN}"
    )
} else {
    // changes() is what the reservation changed: 1 if it reserved, 0 if not.
    formatcp!(
        "{COUNT_ADDRESS}; \
         {RESERVE} AND (SELECT attempts FROM sign_in_addresses WHERE address = $3) <= $4; \
         SELECT a.window_start AS address_window_start, a.attempts AS address_attempts, \
         CASE WHEN changes() > 0 THEN u.failed_attempts END AS reserved_attempt, {USER_COLS} \
         FROM sign_in_addresses a {ACCOUNT_JOIN} WHERE a.address = $3"
    )
};

pub(super) fn sign_in_row(r: &DbRow) -> Result<SignInAttempt> {
    let g = |e: sqlx::Error| map_err(e);
    let window_start: i64 = r.try_get("address_window_start").map_err(g)?;
    let account = match r.try_get::<Option<i64>, _>("id").map_err(g)? {
        Some(_) => Some(SignInAccount {
            user: user_row(r)?,
            attempt: r.try_get("reserved_attempt").map_err(g)?,
        }),
        None => None,
    };
    Ok(SignInAttempt {
        address_attempts: r.try_get("address_attempts").map_err(g)?,
        address_window_ends: Timestamp(window_start + ADDRESS_WINDOW_MILLIS),
        account,
    })
}

#[async_trait]
impl SignInStore for BackendStore {
    async fn sign_in_attempt(
        &self,
        email_key: &str,
        address: &str,
        per_address: i64,
        now: Timestamp,
    ) -> Result<SignInAttempt> {
        let query = sqlx::query(SIGN_IN)
            .bind(email_key)
            .bind(now.millis())
            .bind(address)
            .bind(per_address);
        let row = if DIALECT.data_modifying_with {
            query.fetch_one(&self.pool).await.map_err(map_err)?
        } else {
            // One commit for the count and the reservation, whether or not there is one.
            let mut tx = self.begin().await?;
            let row = query.fetch_one(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            row
        };
        sign_in_row(&row)
    }

    async fn purge_sign_in_addresses(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sign_in_addresses WHERE window_start <= $1")
            .bind(now.millis() - ADDRESS_WINDOW_MILLIS)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
