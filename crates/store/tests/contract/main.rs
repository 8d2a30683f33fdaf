//! The storage contract: the same behaviour from the SQLite and the PostgreSQL implementation,
//! one module per aggregate. Every test gets its own database and runs once per backend under
//! its own name (`users::sqlite::…`, `users::postgres::…`); the PostgreSQL ones are ignored
//! unless asked for: `cargo test -- --ignored postgres` with `BACKOFFICE_TEST_POSTGRES_URL` set
//! (`.ci/run` does).

mod clients;
mod events;
mod forwarding;
mod groups;
mod sessions;
mod support;
mod two_factor;
mod users;
