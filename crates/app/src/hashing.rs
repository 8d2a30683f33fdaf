//! Password hashing with argon2id. Hashing is slow on purpose, so it runs on its own threads, one
//! per core, at a lower CPU priority (nice 10): a flood of sign-ins uses every idle cycle, but
//! the scheduler serves the async workers first, so every other request stays fast meanwhile.
//! A semaphore sized to the cores queues the excess, so a client that gives up leaves the queue.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{oneshot, Semaphore};

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    /// Verified against when the email is unknown, so that costs the same time as a real check.
    /// Made on first use, so starting the server doesn't wait for a hash.
    dummy: Arc<OnceLock<String>>,
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

/// Lowers the calling thread's CPU priority (Linux keeps a nice value per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its integer arguments; it changes this thread's nice value.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
}

impl Hasher {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..cores {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = queue.lock().map(|q| q.recv());
                        match job {
                            Ok(Ok(job)) => job(),
                            _ => return,
                        }
                    }
                })
                .expect("can start a hashing thread");
        }
        // The dummy hash is made in the background, so start-up doesn't wait for it.
        let dummy = Arc::new(OnceLock::new());
        let made = dummy.clone();
        let _ = jobs.send(Box::new(move || {
            made.get_or_init(|| hash_now(&domain::password::generate()));
        }));
        Self {
            permits: Arc::new(Semaphore::new(cores)),
            jobs,
            dummy,
        }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        self.jobs
            .send(job)
            .expect("hashing threads run for the process");
        result.await.expect("hashing job finished")
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
        self.run(move || {
            let stored = dummy.get_or_init(|| hash_now(&domain::password::generate()));
            verify_now(&p, stored)
        })
        .await;
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
