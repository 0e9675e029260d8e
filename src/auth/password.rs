//! argon2id hashing, slow on purpose. It runs on a small pool of dedicated threads, one per core,
//! behind a semaphore, and each thread reuses one argon2 work area: a login flood neither stalls
//! the async workers nor allocates 19 MiB per request. (Allocating per hash on Tokio's blocking
//! pool let glibc keep freed work areas in per-thread arenas: 64 logins grew the process past 1 GB.)

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use std::cell::RefCell;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use rocket::tokio::sync::{oneshot, Semaphore};

use crate::config::Settings;
use crate::error::Error;

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords with bounded concurrency and memory.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    /// A real hash of a random password, verified against when the user does not exist so a
    /// failed login takes as long whether or not the account exists.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// Builds the hasher from the argon2 settings: starts its threads and computes the dummy hash.
    pub fn new(settings: &Settings) -> Result<PasswordHasher, Error> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| Error::Config(format!("invalid argon2 parameters: {e}")))?;
        let threads = settings.hash_concurrency();
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return, // every hasher is gone
                    }
                })
                .map_err(|e| Error::Config(format!("cannot start hashing threads: {e}")))?;
        }
        // The dummy hash is made on a hashing thread too, so only those threads hold work areas.
        let (done, dummy) = mpsc::channel();
        let dummy_params = params.clone();
        jobs.send(Box::new(move || {
            let random: [u8; 24] = rand::random();
            let _ = done.send(hash_with(&dummy_params, &random));
        }))
        .map_err(|_| Error::Task("hashing threads stopped".into()))?;
        let dummy = dummy
            .recv()
            .map_err(|_| Error::Task("hashing threads stopped".into()))??;
        Ok(PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(threads)),
            jobs,
            dummy_hash: dummy.into(),
        })
    }

    /// Hashes now, on the calling thread (CLI use).
    pub fn hash_blocking(&self, password: &str) -> Result<String, Error> {
        hash_with(&self.params, password.as_bytes())
    }

    /// Runs `work` on a hashing thread once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(work());
            }))
            .map_err(|_| Error::Task("hashing threads stopped".into()))?;
        result
            .await
            .map_err(|_| Error::Task("a hashing job was dropped".into()))
    }

    /// Hashes a password into a PHC string, off the async workers.
    pub async fn hash(&self, password: String) -> Result<String, Error> {
        let params = self.params.clone();
        self.run(move || hash_with(&params, password.as_bytes()))
            .await?
    }

    /// Checks a password against a stored hash, or against the dummy hash when there is no user
    /// (the answer is then always false, after the same work).
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, Error> {
        let exists = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let ok = self.run(move || verify_with(&password, &hash)).await??;
        Ok(exists && ok)
    }
}

thread_local! {
    /// This thread's argon2 work area, grown to the largest cost seen and then reused.
    static WORK_AREA: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs argon2id with this thread's work area.
fn argon2_into(params: Params, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), Error> {
    let blocks = params.block_count();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    WORK_AREA.with(|area| {
        let mut area = area.borrow_mut();
        if area.len() < blocks {
            area.resize(blocks, Block::new());
        }
        argon2
            .hash_password_into_with_memory(password, salt, out, &mut area[..blocks])
            .map_err(|e| Error::PasswordHash(e.to_string()))
    })
}

/// A new PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) with a random 16-byte salt.
fn hash_with(params: &Params, password: &[u8]) -> Result<String, Error> {
    let salt: [u8; 16] = rand::random();
    let mut out = [0u8; 32];
    argon2_into(params.clone(), password, &salt, &mut out)?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// Checks `password` against a PHC string, with the parameters recorded in it (so old hashes
/// keep working after the cost settings change), comparing in constant time.
fn verify_with(password: &str, stored: &str) -> Result<bool, Error> {
    let unreadable =
        |e: &dyn std::fmt::Display| Error::PasswordHash(format!("stored hash unreadable: {e}"));
    let parsed = PasswordHash::new(stored).map_err(|e| unreadable(&e))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(unreadable(&parsed.algorithm));
    }
    let params = Params::try_from(&parsed).map_err(|e| unreadable(&e))?;
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err(unreadable(&"no salt or hash"));
    };
    let mut out = vec![0u8; expected.len()];
    argon2_into(params, password.as_bytes(), salt.as_ref(), &mut out)?;
    Ok(constant_time_eq(&out, expected.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With `hash_concurrency = 2`, many jobs at once run at most two at a time, each on a
    /// `password-hash-*` thread, while a task on a one-thread runtime keeps running; real hashes
    /// and checks leave that runtime thread without an argon2 work area.
    #[test]
    fn hashing_is_bounded_and_stays_off_the_async_workers() {
        use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
        use std::time::{Duration, Instant};

        const N: usize = 2;
        const JOBS: usize = 6;
        const JOB_TIME: Duration = Duration::from_millis(300);
        let settings = Settings {
            argon2_memory_kib: 256,
            argon2_iterations: 1,
            hash_concurrency: N,
            ..Settings::default()
        };
        let hasher = PasswordHasher::new(&settings).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let longest_gap = Arc::new(AtomicU64::new(0));
        let gap = longest_gap.clone();
        let (peak_, threads_) = (peak.clone(), threads.clone());
        // A fresh thread for the runtime, so its argon2 work area starts empty.
        let worker = std::thread::spawn(move || {
            let (peak, threads) = (peak_, threads_);
            let runtime = rocket::tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let took = runtime.block_on(async {
                // Ticks on the runtime's only thread; a job run there would stall it.
                let ticker = rocket::tokio::spawn(async move {
                    let mut last = Instant::now();
                    loop {
                        rocket::tokio::time::sleep(Duration::from_millis(10)).await;
                        gap.fetch_max(last.elapsed().as_millis() as u64, Ordering::SeqCst);
                        last = Instant::now();
                    }
                });
                let start = Instant::now();
                let jobs: Vec<_> = (0..JOBS)
                    .map(|_| {
                        let (hasher, running, peak, threads) = (
                            hasher.clone(),
                            running.clone(),
                            peak.clone(),
                            threads.clone(),
                        );
                        rocket::tokio::spawn(async move {
                            hasher
                                .run(move || {
                                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                                    peak.fetch_max(now, Ordering::SeqCst);
                                    let name = std::thread::current().name().map(str::to_string);
                                    threads.lock().unwrap().push(name);
                                    std::thread::sleep(JOB_TIME);
                                    running.fetch_sub(1, Ordering::SeqCst);
                                })
                                .await
                        })
                    })
                    .collect();
                // Real hashes and checks alongside, through the same permits and threads.
                let hashes: Vec<_> = (0..4)
                    .map(|i| {
                        let hasher = hasher.clone();
                        rocket::tokio::spawn(async move {
                            let hash = hasher.hash(format!("password {i}")).await.unwrap();
                            assert!(hasher
                                .verify(format!("password {i}"), Some(hash))
                                .await
                                .unwrap());
                            assert!(!hasher.verify("x".into(), None).await.unwrap());
                        })
                    })
                    .collect();
                for job in jobs {
                    job.await.unwrap().unwrap();
                }
                for hash in hashes {
                    hash.await.unwrap();
                }
                ticker.abort();
                start.elapsed()
            });
            let clean = WORK_AREA.with(|area| area.borrow().is_empty());
            (took, clean)
        });
        let (took, clean) = worker.join().unwrap();
        assert!(clean, "argon2 ran on the runtime thread");
        let longest_gap = longest_gap.load(Ordering::SeqCst);
        assert!(
            longest_gap < 200,
            "the runtime thread stalled for {longest_gap} ms while jobs of {JOB_TIME:?} ran"
        );
        assert_eq!(
            peak.load(Ordering::SeqCst),
            N,
            "at most (and up to) N at once"
        );
        assert!(
            took >= JOB_TIME * (JOBS / N) as u32,
            "{JOBS} jobs of {JOB_TIME:?} took {took:?}: more than {N} ran at once"
        );
        let threads = threads.lock().unwrap();
        assert_eq!(threads.len(), JOBS);
        for name in threads.iter() {
            assert!(
                name.as_deref()
                    .is_some_and(|n| n.starts_with("password-hash-")),
                "a job ran on {name:?}"
            );
        }
    }

    #[test]
    fn our_phc_strings_interoperate_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(256, 1, 1, None).unwrap();
        let ours = hash_with(&params, b"correct horse").unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=256,t=1,p=1$"));
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong horse", &parsed)
            .is_err());

        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"battery staple")
            .unwrap()
            .to_string();
        assert!(verify_with("battery staple", &theirs).unwrap());
        assert!(!verify_with("battery stapler", &theirs).unwrap());
        assert!(verify_with(
            "x",
            "$argon2i$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
        )
        .is_err());
        assert!(verify_with("x", "not a hash").is_err());
    }
}
