//! Password hashing with argon2id. Hashing is slow on purpose, so it runs on the blocking pool
//! behind a semaphore sized to the cores: a flood of sign-ins queues here instead of starving
//! the async workers that serve every other request.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// Verified against when the email is unknown, so that costs the same time as a real check.
    dummy: Arc<String>,
}

/// argon2id, m=19 MiB, t=2, p=1 (OWASP's minimum, the crate's default).
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

fn hash_now(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// The result of a verification: whether it matched, and whether the stored hash should be
/// replaced because it was made with older (weaker) parameters.
pub struct Verified {
    pub ok: bool,
    pub needs_rehash: bool,
}

fn verify_now(password: &str, stored: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verified {
            ok: false,
            needs_rehash: false,
        };
    };
    let ok = argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    let current = Params::default();
    let outdated = parsed.algorithm.as_str() != "argon2id"
        || Params::try_from(&parsed)
            .map(|p| p.m_cost() < current.m_cost() || p.t_cost() < current.t_cost())
            .unwrap_or(true);
    Verified {
        ok,
        needs_rehash: ok && outdated,
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let dummy = hash_now(&domain::password::generate());
        Self {
            permits: Arc::new(Semaphore::new(cores)),
            dummy: Arc::new(dummy),
        }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        tokio::task::spawn_blocking(f)
            .await
            .expect("hashing task panicked")
    }

    pub async fn hash(&self, password: &str) -> String {
        let p = password.to_string();
        self.run(move || hash_now(&p)).await
    }

    pub async fn verify(&self, password: &str, stored: &str) -> Verified {
        let (p, s) = (password.to_string(), stored.to_string());
        self.run(move || verify_now(&p, &s)).await
    }

    /// Spends the time of a real verification and always fails.
    pub async fn verify_dummy(&self, password: &str) {
        let dummy = self.dummy.clone();
        let p = password.to_string();
        self.run(move || verify_now(&p, &dummy)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_flag_old_parameters() {
        let h = Hasher::new();
        let stored = h.hash("correct horse battery staple").await;
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify("correct horse battery staple", &stored).await.ok);
        assert!(!h.verify("wrong horse battery staple", &stored).await.ok);
        assert!(
            !h.verify("correct horse battery staple", &stored)
                .await
                .needs_rehash
        );

        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        )
        .hash_password(b"old password here", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        let v = h.verify("old password here", &weak).await;
        assert!(v.ok && v.needs_rehash);
    }
}
