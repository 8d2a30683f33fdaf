//! The SQL both backends share, one file per aggregate. sqlx's SQLite driver accepts `$n`
//! placeholders and both databases speak `RETURNING` and `ON CONFLICT`, so one text serves both.
//!
//! This module is compiled once per backend: `sqlite.rs` and `postgres.rs` each mount it
//! (`#[path = "sql/mod.rs"] mod sql;`) and it takes from its parent, by name, the four things
//! that make it that backend's: the sqlx database type `Db`, the store type `BackendStore` (with
//! its `pool` and `begin()`), the backend's `DIALECT` (everything the SQL text does differently,
//! in one [`Dialect`](crate::dialect::Dialect) value) and its `MIGRATOR`. Nothing else differs.

mod authority;
pub(super) mod clients;
mod dashboard;
mod events;
mod forwarding;
mod groups;
mod idempotency;
mod resets;
mod sessions;
mod sign_in;
mod store;
mod tags;
mod tokens;
mod two_factor;
mod users;

use super::{BackendStore, Db, BACKEND_NAME, DIALECT, MIGRATOR};
use crate::{AuditEntry, Decision, Edit, Result, StoreError};

type DbRow = <Db as sqlx::Database>::Row;

/// Decodes a row by column name (the checked conversion to a record follows).
fn decode<'r, R: sqlx::FromRow<'r, DbRow>>(r: &'r DbRow) -> Result<R> {
    R::from_row(r).map_err(crate::map_err)
}
type Tx = sqlx::Transaction<'static, Db>;

/// Runs `edit` on the row just read (and locked) in `tx`.
fn decide<R, C>(edit: Edit<'_, R, C>, row: &R) -> Result<Decision<C>> {
    edit(row).map_err(StoreError::Rejected)
}

/// `entry` about the row just inserted, when it names no target of its own.
fn with_target_id(mut entry: AuditEntry, id: i64) -> AuditEntry {
    if entry.event.target_id.is_none() {
        entry.event.target_id = Some(id);
    }
    entry
}

/// ` FOR UPDATE OF <table>` where the backend locks the rows a read-modify-write reads
/// (PostgreSQL, until the commit); nothing where its write transaction already excludes every
/// other writer (SQLite's `BEGIN IMMEDIATE`).
macro_rules! lock_rows {
    ($table:literal) => {
        if DIALECT.row_locks {
            concat!(" FOR UPDATE OF ", $table)
        } else {
            ""
        }
    };
}
use lock_rows;
