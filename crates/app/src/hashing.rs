//! Password hashing with argon2id. Hashing is slow on purpose, so it runs on its own threads, one
//! per core, at the idle CPU priority (`SCHED_IDLE`): a flood of sign-ins uses every idle cycle,
//! but any other thread that wakes up runs first, so every other request stays fast meanwhile.
//! The excess waits in one queue that the hashing threads take from as soon as they finish, with
//! no trip through the async runtime in between; a job whose client gave up is skipped.
//!
//! Each hash needs 19 MiB of work memory. Allocating it afresh costs thousands of page faults
//! and a full extra write of the block, about a fifth of the hash, so while sign-ins keep coming
//! the blocks are kept in a small pool; when the last queued hash is done the pool is emptied, so
//! an idle server holds none of it.

use argon2::password_hash::{rand_core::OsRng, Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct Hasher {
    jobs: mpsc::Sender<Job>,
    /// Work memory of finished hashes, reused while more are queued.
    pool: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Hashes asked for and not yet answered (queued or running).
    demand: Arc<AtomicUsize>,
    /// Verified against when the email is unknown, so that costs the same time as a real check.
    /// Made on first use, so starting the server doesn't wait for a hash.
    dummy: Arc<OnceLock<String>>,
}

/// The configured cost: argon2id, m=19 MiB, t=2, p=1 (OWASP's minimum, the crate's default).
pub fn params() -> Params {
    Params::default()
}

/// Runs argon2 with `params` into `out`, in `memory` (grown if too small; its old contents don't
/// matter, as the first pass overwrites every block).
fn argon2_into(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> argon2::Result<()> {
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        out,
        &mut memory[..],
    )
}

fn hash_now(password: &str, memory: &mut Vec<Block>) -> String {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return String::new();
    };
    let params = params();
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    let computed = argon2_into(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        password,
        salt_bytes,
        &mut out,
        memory,
    );
    let phc = computed.ok().and_then(|()| {
        Some(PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: (&params).try_into().ok()?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).ok()?),
        })
    });
    phc.map(|h| h.to_string()).unwrap_or_default()
}

/// The result of a verification: whether it matched, and whether the stored hash should be
/// replaced because it was made with older (weaker) parameters.
pub struct Verified {
    pub ok: bool,
    pub needs_rehash: bool,
}

/// Whether `password` hashes to `stored` with the stored hash's own algorithm and parameters.
fn matches(password: &str, stored: &PasswordHash, memory: &mut Vec<Block>) -> Option<bool> {
    let algorithm = Algorithm::try_from(stored.algorithm).ok()?;
    let version = stored
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .ok()?;
    let params = Params::try_from(stored).ok()?;
    let expected = stored.hash?;
    let mut salt = [0u8; 64];
    let salt = stored.salt?.decode_b64(&mut salt).ok()?;
    let mut out = vec![0u8; expected.len()];
    argon2_into(algorithm, version, params, password, salt, &mut out, memory).ok()?;
    // Output's equality is constant-time.
    Some(Output::new(&out).ok()? == expected)
}

fn verify_now(password: &str, stored: &str, memory: &mut Vec<Block>) -> Verified {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verified {
            ok: false,
            needs_rehash: false,
        };
    };
    let ok = matches(password, &parsed, memory).unwrap_or(false);
    let current = params();
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

/// Gives the calling thread the idle CPU priority (Linux keeps a policy per thread). A nice value
/// only ranks threads within one scheduling group, and systemd services and login sessions are
/// groups of their own, so at nice 10 a PostgreSQL backend on the same host still waited behind
/// argon2 for its turn; a `SCHED_IDLE` thread is preempted by any other thread that wakes. Nice
/// 10 stays as the fallback where the policy can't be set.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: both calls only read their arguments and change this thread's own priority.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
        let idle = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &idle) != 0 {
            tracing::debug!("hashing threads stay at nice 10: SCHED_IDLE refused");
        }
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
            made.get_or_init(|| hash_now(&domain::password::generate(), &mut Vec::new()));
        }));
        Self {
            jobs,
            pool: Arc::default(),
            demand: Arc::default(),
            dummy,
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> T {
        let _demand = Demand::count(self);
        let (done, result) = oneshot::channel();
        let (pool, demand) = (self.pool.clone(), self.demand.clone());
        let queued = Instant::now();
        let job: Job = Box::new(move || {
            if done.is_closed() {
                return; // the caller gave up while this waited
            }
            let started = Instant::now();
            let mut memory = pool
                .lock()
                .ok()
                .and_then(|mut p| p.pop())
                .unwrap_or_default();
            let result = f(&mut memory);
            crate::metrics::hashed(started - queued, started.elapsed());
            // Back in the pool before the caller hears, so the last caller's clean-up finds it;
            // if the caller has given up meanwhile, this job is the last one out.
            if let Ok(mut p) = pool.lock() {
                p.push(memory);
                if demand.load(Ordering::SeqCst) == 0 {
                    p.clear();
                }
            }
            let _ = done.send(result);
        });
        self.jobs
            .send(job)
            .expect("hashing threads run for the process");
        result.await.expect("hashing job finished")
    }

    /// Hashes asked for and not answered yet: queued or running.
    pub fn queue_depth(&self) -> usize {
        self.demand.load(Ordering::SeqCst)
    }

    pub async fn hash(&self, password: &str) -> String {
        let p = password.to_string();
        self.run(move |memory| hash_now(&p, memory)).await
    }

    pub async fn verify(&self, password: &str, stored: &str) -> Verified {
        let (p, s) = (password.to_string(), stored.to_string());
        self.run(move |memory| verify_now(&p, &s, memory)).await
    }

    /// Spends the time of a real verification and always fails.
    pub async fn verify_dummy(&self, password: &str) {
        let dummy = self.dummy.clone();
        let p = password.to_string();
        self.run(move |memory| {
            let stored = dummy.get_or_init(|| hash_now(&domain::password::generate(), memory));
            verify_now(&p, stored, memory)
        })
        .await;
    }
}

/// Counts one hash in `Hasher::demand` for as long as it lives, also when its caller gives up.
/// The last one out frees the pooled work memory, on a hashing thread.
struct Demand<'a>(&'a Hasher);

impl<'a> Demand<'a> {
    fn count(hasher: &'a Hasher) -> Self {
        hasher.demand.fetch_add(1, Ordering::SeqCst);
        Self(hasher)
    }
}

impl Drop for Demand<'_> {
    fn drop(&mut self) {
        if self.0.demand.fetch_sub(1, Ordering::SeqCst) == 1 {
            let (pool, demand) = (self.0.pool.clone(), self.0.demand.clone());
            let _ = self.0.jobs.send(Box::new(move || {
                if demand.load(Ordering::SeqCst) == 0 {
                    if let Ok(mut p) = pool.lock() {
                        p.clear();
                    }
                }
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_idle_priority() {
        let h = Hasher::new();
        // SAFETY: sched_getscheduler only reads the calling (hashing) thread's policy.
        let policy = h.run(|_| unsafe { libc::sched_getscheduler(0) }).await;
        assert_eq!(policy, libc::SCHED_IDLE);
    }

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
        assert!(!h.verify("old password hers", &weak).await.ok);
        assert!(!h.verify("anything", "not a hash").await.ok);
    }

    /// The pooled-memory path must agree with the argon2 crate's own hash and verify, both ways,
    /// also when the pooled block last held another password's (or a smaller hash's) state.
    #[tokio::test]
    async fn agrees_with_the_argon2_crate_in_both_directions() {
        let h = Hasher::new();
        let standard = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let theirs = standard
            .hash_password(
                b"Quartz-Harbour-Lantern-42",
                &SaltString::generate(&mut OsRng),
            )
            .unwrap()
            .to_string();
        let ours = h.hash("Quartz-Harbour-Lantern-42").await;
        let ours_parsed = PasswordHash::new(&ours).unwrap();
        assert!(standard
            .verify_password(b"Quartz-Harbour-Lantern-42", &ours_parsed)
            .is_ok());
        assert!(standard
            .verify_password(b"Quartz-Harbour-Lantern-43", &ours_parsed)
            .is_err());
        // Many at once, so pooled blocks are reused with stale contents.
        let checks = (0..8).map(|i| {
            let (h, theirs) = (h.clone(), theirs.clone());
            tokio::spawn(async move {
                let password = if i % 2 == 0 {
                    "Quartz-Harbour-Lantern-42"
                } else {
                    "Quartz-Harbour-Lantern-24"
                };
                (i, h.verify(password, &theirs).await.ok)
            })
        });
        for check in checks {
            let (i, ok) = check.await.unwrap();
            assert_eq!(ok, i % 2 == 0, "verification {i}");
        }
    }

    /// A hash still queued when its caller gives up is never computed.
    #[tokio::test]
    async fn a_queued_job_whose_caller_gave_up_is_skipped() {
        let h = Hasher::new();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Every hashing thread waits on `release`, so the next job stays queued.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(Mutex::new(held));
        let (started, mut running) = tokio::sync::mpsc::unbounded_channel();
        let blockers: Vec<_> = (0..threads)
            .map(|_| {
                let (h, held, started) = (h.clone(), held.clone(), started.clone());
                tokio::spawn(async move {
                    h.run(move |_| {
                        started.send(()).unwrap();
                        held.lock().unwrap().recv().unwrap();
                    })
                    .await
                })
            })
            .collect();
        for _ in 0..threads {
            running.recv().await.unwrap();
        }
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = ran.clone();
        let given_up = {
            let h = h.clone();
            tokio::spawn(async move {
                h.run(move |_| counted.fetch_add(1, Ordering::SeqCst)).await;
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        given_up.abort();
        let _ = given_up.await;
        for _ in 0..threads {
            release.send(()).unwrap();
        }
        for b in blockers {
            b.await.unwrap();
        }
        // A job queued after the given-up one runs, so the given-up one has been taken by now.
        assert_eq!(h.run(|_| 7).await, 7);
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the abandoned job ran");
    }

    /// Work memory is kept only while hashes are asked for: once the last is answered the pool
    /// is empty, also when a caller gave up before its hash was done.
    #[tokio::test]
    async fn an_idle_hasher_holds_no_work_memory() {
        let h = Hasher::new();
        let stored = h.hash("Copper-Meadow-Violin-77").await;
        let mut waits: Vec<_> = (0..4)
            .map(|_| {
                let (h, s) = (h.clone(), stored.clone());
                tokio::spawn(async move { h.verify("Copper-Meadow-Violin-77", &s).await.ok })
            })
            .collect();
        waits.pop().unwrap().abort();
        for w in waits {
            assert!(w.await.unwrap());
        }
        let given_up = {
            let (h, s) = (h.clone(), stored.clone());
            tokio::spawn(async move { h.verify("Copper-Meadow-Violin-77", &s).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        given_up.abort();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            // Every job holds a clone of the pool: one reference left means none is pending.
            let idle = h.demand.load(Ordering::SeqCst) == 0 && Arc::strong_count(&h.pool) == 1;
            if idle && h.pool.lock().unwrap().is_empty() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "pool never emptied");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
