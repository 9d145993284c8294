//! Argon2id password hashing, off the async runtime and bounded, so a burst
//! of sign-ups cannot starve every other request of CPU.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::domain::Password;
use crate::error::Error;

/// Argon2id cost. The defaults are OWASP's recommendation (19 MiB, 2 passes).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordSettings {
    pub memory_kib: u32,
    pub iterations: u32,
    /// Hashes computed at once; 0 means one per CPU core.
    pub max_concurrent: usize,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            max_concurrent: 0,
        }
    }
}

#[derive(Clone)]
pub struct Hasher {
    argon2: Arc<Argon2<'static>>,
    permits: Arc<Semaphore>,
    busy: Arc<Busy>,
    /// Verified against when a username does not exist, so that answering
    /// "no such user" takes as long as "wrong password" and timing does not
    /// reveal which usernames exist.
    dummy: Arc<str>,
}

impl Hasher {
    pub fn new(settings: &PasswordSettings) -> Result<Self, argon2::Error> {
        let params = Params::new(settings.memory_kib, settings.iterations, 1, None)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy = dummy_hash(settings);
        PasswordHash::new(&dummy).map_err(|_| argon2::Error::OutputTooShort)?;
        let permits = match settings.max_concurrent {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        Ok(Self {
            argon2: Arc::new(argon2),
            permits: Arc::new(Semaphore::new(permits)),
            busy: Arc::default(),
            dummy: dummy.into(),
        })
    }

    pub async fn hash(&self, password: Password) -> Result<String, Error> {
        let argon2 = self.argon2.clone();
        self.blocking(move || {
            argon2
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| Error::Hashing(e.to_string()))
        })
        .await
    }

    /// Whether `password` matches `hash`; `None` (no such user) never matches
    /// but costs the same time.
    pub async fn verify(&self, password: Password, hash: Option<String>) -> Result<bool, Error> {
        let argon2 = self.argon2.clone();
        let exists = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.to_string());
        self.blocking(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| Error::Hashing(e.to_string()))?;
            Ok(exists && argon2.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        // The permit goes into the blocking closure: a login cancelled
        // while its hash runs (the caller hung up, its deadline passed)
        // leaves the hash running on the pool, so the permit must stay
        // taken until the hash ends, not until the caller leaves.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Hashing(e.to_string()))?;
        let busy = self.busy.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _running = busy.enter();
            work()
        })
        .await
        .map_err(|e| Error::Hashing(e.to_string()))?
    }
}

/// Hashes running on the blocking pool, counted where they run: a hash
/// whose caller went away keeps its thread busy until it ends.
#[derive(Debug, Default)]
struct Busy {
    running: AtomicUsize,
    /// The most that ever ran at once.
    peak: AtomicUsize,
}

impl Busy {
    fn enter(&self) -> Running<'_> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Running(self)
    }
}

struct Running<'a>(&'a Busy);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A well-formed hash with our cost and random salt and output: verifying
/// against it costs what a real verification costs and never matches.
/// Written out rather than computed, so start-up neither spends a hash's
/// time nor leaves its 19 MiB behind in the allocator.
fn dummy_hash(settings: &PasswordSettings) -> String {
    use base64::Engine as _;
    let b64 = |n: usize| {
        let bytes: Vec<u8> = std::iter::repeat_with(|| fastrand::u8(..))
            .take(n)
            .collect();
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
    };
    format!(
        "$argon2id$v=19$m={},t={},p=1${}${}",
        settings.memory_kib,
        settings.iterations,
        b64(16),
        b64(32)
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn cheap() -> Hasher {
        Hasher::new(&PasswordSettings {
            memory_kib: 64,
            iterations: 1,
            max_concurrent: 2,
        })
        .unwrap()
    }

    fn pw(s: &str) -> Password {
        Password::parse(s.into()).unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = cheap();
        let hash = h.hash(pw("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            h.verify(pw("correct horse"), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!h.verify(pw("wrong horse!"), Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        assert!(
            !cheap()
                .verify(pw("not a real password"), None)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_stand_in_for_an_unknown_user_costs_what_a_real_hash_costs() {
        let h = cheap();
        let real = h.hash(pw("correct horse")).await.unwrap();
        let params = |hash: &str| {
            let parsed = PasswordHash::new(hash).unwrap();
            (parsed.algorithm.to_string(), parsed.params.to_string())
        };
        assert_eq!(params(&h.dummy), params(&real));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_logins_do_not_let_more_hashes_run_than_permitted() {
        // Costly enough that a cancelled hash is still running when the
        // next logins ask for a permit.
        let h = Hasher::new(&PasswordSettings {
            memory_kib: 16 * 1024,
            iterations: 3,
            max_concurrent: 2,
        })
        .unwrap();
        let hash = h.hash(pw("correct horse")).await.unwrap();
        for _ in 0..3 {
            let logins: Vec<_> = (0..2)
                .map(|_| {
                    let (h, hash) = (h.clone(), hash.clone());
                    tokio::spawn(async move { h.verify(pw("correct horse"), Some(hash)).await })
                })
                .collect();
            // Until both hash at once, or are over: on a loaded machine one
            // can end before the other starts, and two never run together
            // (waiting only for two once spun a core for 14 minutes in CI).
            // A sleep, not `yield_now`: a spinning worker takes the CPU the
            // hashes need.
            while h.busy.running.load(Ordering::SeqCst) < 2
                && !logins.iter().all(tokio::task::JoinHandle::is_finished)
            {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            // The callers go away while both hashes run on the pool.
            for login in &logins {
                login.abort();
            }
            let next: Vec<_> = (0..4)
                .map(|_| {
                    let (h, hash) = (h.clone(), hash.clone());
                    tokio::spawn(async move { h.verify(pw("correct horse"), Some(hash)).await })
                })
                .collect();
            for login in next {
                assert!(login.await.unwrap().unwrap());
            }
        }
        // At most: on a loaded machine the hashes need not overlap at all.
        let peak = h.busy.peak.load(Ordering::SeqCst);
        assert!(
            peak <= 2,
            "{peak} hashes ran at once, with max_concurrent 2"
        );
    }

    #[test]
    fn impossible_parameters_are_rejected() {
        let bad = PasswordSettings {
            memory_kib: 1,
            ..Default::default()
        };
        assert!(Hasher::new(&bad).is_err());
    }
}
