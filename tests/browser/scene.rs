//! One browser test: its own database, site and browsers; a screenshot of every browser's last
//! page under `target/screenshots/`, taken whether the test passed or failed.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use futures::FutureExt;

use crate::chrome::{self, Browser, Chrome};
use crate::db::TestDb;
use crate::site::Site;

/// Browser tests take turns: two Chromiums per test already keep both cores of a CI machine busy,
/// and a starved browser is a flaky one.
static TURN: Mutex<()> = Mutex::new(());

/// Where screenshots go: `$CARGO_TARGET_DIR/screenshots` or `target/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}

/// The database, sites and browsers of one test.
pub struct Scene {
    name: &'static str,
    /// Profiles and the SQLite file live here.
    pub dir: tempfile::TempDir,
    /// The database every site of this test shares.
    pub db: TestDb,
    browsers: Mutex<Vec<(String, Chrome)>>,
    _turn: MutexGuard<'static, ()>,
}

impl Scene {
    /// Waits for its turn and makes a fresh database; `name` names the screenshots. `None` when
    /// no browser can be started (see [`chrome::available`]): the test then returns, skipped.
    pub fn new(name: &'static str) -> Option<Scene> {
        if !chrome::available(name) {
            return None;
        }
        let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = tempfile::tempdir().expect("temp dir");
        let db = TestDb::new(&dir);
        Some(Scene {
            name,
            dir,
            db,
            browsers: Mutex::new(Vec::new()),
            _turn: turn,
        })
    }

    /// Starts an instance of the site on this test's database.
    pub async fn site(&self) -> Site {
        Site::start(self.db.url()).await
    }

    /// Starts an instance of the site on this test's database with these settings (see
    /// [`Site::start_with`]).
    pub async fn site_with(&self, settings: &[(&str, i64)]) -> Site {
        Site::start_with(self.db.url(), settings).await
    }

    /// Starts an instance of the site on this test's database that sends its mail to `server`.
    pub async fn site_mailing_to(&self, server: &crate::smtp::MailServer) -> Site {
        let url = server.url();
        Site::start_with_text(
            self.db.url(),
            &[("mail_retry_secs", 1)],
            &[("smtp_url", &url)],
        )
        .await
    }

    /// Starts an instance of the site on this test's database with these text settings (see
    /// [`Site::start_with_text`]).
    pub async fn site_with_text(&self, settings: &[(&str, &str)]) -> Site {
        Site::start_with_text(self.db.url(), &[], settings).await
    }

    /// Starts a browser with a new profile; `label` names it in screenshots.
    pub async fn browser(&self, label: &str) -> Browser {
        let profile = self.dir.path().join(format!("profile-{label}"));
        self.launch(label, profile).await
    }

    /// Quits `browser` and starts it again on the same profile, as a person closing and
    /// reopening it would.
    pub async fn restart(&self, browser: Browser) -> Browser {
        let chrome = {
            let mut open = self.browsers.lock().unwrap();
            let at = open
                .iter()
                .position(|(label, _)| *label == browser.label)
                .expect("an open browser");
            open.remove(at).1
        };
        let profile = chrome.profile.clone();
        chrome.quit().await;
        self.launch(&browser.label, profile).await
    }

    async fn launch(&self, label: &str, profile: PathBuf) -> Browser {
        let chrome = Chrome::launch(&profile).await;
        let browser = Browser {
            label: label.to_string(),
            client: chrome.client.clone(),
        };
        self.browsers
            .lock()
            .unwrap()
            .push((label.to_string(), chrome));
        browser
    }

    /// Runs the test's steps, then screenshots and quits every browser, then fails if a step did.
    pub async fn run(&self, steps: impl Future<Output = ()>) {
        let outcome = AssertUnwindSafe(steps).catch_unwind().await;
        let open = std::mem::take(&mut *self.browsers.lock().unwrap());
        let dir = screenshot_dir();
        let _ = std::fs::create_dir_all(&dir);
        for (label, chrome) in open {
            let file = if label == "main" {
                dir.join(format!("{}.png", self.name))
            } else {
                dir.join(format!("{}-{label}.png", self.name))
            };
            match chrome.client.screenshot().await {
                Ok(png) => {
                    if let Err(e) = std::fs::write(&file, png) {
                        eprintln!("cannot write {}: {e}", file.display());
                    }
                }
                Err(e) => eprintln!("no screenshot of {label}: {e}"),
            }
            if outcome.is_err() {
                let url = chrome.client.current_url().await.map(|u| u.to_string());
                eprintln!(
                    "[{label}] last page: {url:?}, screenshot {}",
                    file.display()
                );
            }
            chrome.quit().await;
        }
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}
