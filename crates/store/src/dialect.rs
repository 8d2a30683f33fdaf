//! Where the two databases differ in the SQL they share (`sql/`): one value per backend,
//! `sqlite::DIALECT` and `postgres::DIALECT`, each field with the backend's reason beside it.

/// A backend's answers to the few questions on which the shared SQL text differs. Every field
/// is read in a constant expression, so the SQL stays constant text.
pub(crate) struct Dialect {
    /// What refreshes the planner's statistics after a bulk load (`demo seed`).
    pub analyze: &'static str,
    /// Whether writes that always go together are one statement with a data-modifying `WITH`
    /// (else several statements sent in one call): an event's row and the chain head's hash; a
    /// sign-in's attempt count, user row, session and chain head.
    pub data_modifying_with: bool,
    /// Added to the conditions of an UPDATE that reserves a sign-in attempt, so that its commit
    /// need not wait for the disk (empty where durability isn't chosen per transaction).
    pub reservation_commits_without_waiting: &'static str,
    /// Whether a read-modify-write locks the rows it reads (`FOR UPDATE OF …`) until the commit.
    pub row_locks: bool,
    /// The aggregate that makes an export page's rows one JSON array (see `export.rs`):
    /// `json_group_array` (SQLite) or `json_agg` (PostgreSQL). It takes its rows in the order
    /// the subquery gives them (both do; the decoding checks the order anyway).
    pub json_agg: &'static str,
    /// What makes one row's values (all text, or NULL) an array that the aggregate writes as a
    /// JSON array: `json_array(…)` (SQLite) or `ARRAY[…]` (PostgreSQL), opening and closing.
    pub json_row: (&'static str, &'static str),
    /// What turns the aggregate's value into text: nothing where JSON is text (SQLite),
    /// `::text` where it has a type of its own (PostgreSQL's `json`).
    pub json_text: &'static str,
    /// What brings the Dashboard's kept client figures up to date before they are read
    /// (migration 0020): PostgreSQL's writers append changes, which this one statement folds in;
    /// SQLite's triggers add to the figures themselves, so there is nothing to fold.
    pub fold_client_figures: Option<&'static str>,
}
