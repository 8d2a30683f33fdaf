//! Pure types and rules of the Back Office. Nothing here does I/O, so every rule can be
//! unit- and property-tested in isolation and reused by the store, the use cases and the web.

pub mod audit;
pub mod authority;
pub mod client;
pub mod email;
pub mod ip_whitelist;
pub mod masking;
pub mod password;
pub mod permission;
pub mod recovery;
pub mod tag;
pub mod time;
pub mod totp;
pub mod user;
pub mod value_set;

pub use authority::{Authority, PersonalData};
pub use email::Email;
pub use ip_whitelist::IpWhitelist;
pub use permission::{Action, Permission, PermissionSet, Section};
pub use tag::ClientScope;
pub use time::Timestamp;
pub use user::{TwoFactor, UserStatus};
