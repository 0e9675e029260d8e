//! Headless Chromium driven over WebDriver: Debian's `chromium` and `chromium-driver` packages
//! (`CHROMIUM` and `CHROMEDRIVER` name other binaries), one chromedriver per browser.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::process::{Child, Command};

/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(10);

/// How to get what the browser tests need.
const INSTALL: &str = "install it with: apt-get install -y chromium chromium-driver";

/// Set to `1` (as `.ci/run` does) to make a missing browser a failure instead of a skip.
const REQUIRE: &str = "LATCHKEY_REQUIRE_BROWSER";

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

/// `program` as a runnable file: a name with a `/` as it is, a bare name looked up on `PATH`.
fn runnable(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_runnable = |path: &Path| {
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_runnable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_runnable(candidate))
}

/// Whether this test can drive a browser. `false` after one line on stderr when Chromium or
/// chromedriver is missing, so the test returns early and passes as skipped; with
/// `LATCHKEY_REQUIRE_BROWSER=1` a missing browser panics instead, failing the test.
pub fn available(test: &str) -> bool {
    let missing = if runnable(&chromium()).is_none() {
        format!("Chromium not found ({})", chromium())
    } else if runnable(&chromedriver()).is_none() {
        format!("chromedriver not found ({})", chromedriver())
    } else {
        return true;
    };
    let required = std::env::var(REQUIRE).is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(!required, "{missing} and {REQUIRE} is set; {INSTALL}");
    // Straight to the stream, not through eprintln!, which the test harness captures.
    let line = format!("browser test {test} skipped: {missing}; {INSTALL}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

/// A running Chromium with its own profile directory, and the chromedriver that drives it.
pub struct Chrome {
    /// The WebDriver session (cheap to clone).
    pub client: fantoccini::Client,
    /// The profile directory; another `Chrome` on it after this one quits is a browser restart.
    pub profile: PathBuf,
    driver: Child,
}

impl Chrome {
    /// Starts Chromium on `profile` (created if missing). Tests check [`available`] first.
    pub async fn launch(profile: &Path) -> Chrome {
        // A port can be taken between choosing and binding it; a second try settles that.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Chrome::try_launch(profile).await {
                Ok(chrome) => return chrome,
                Err(e) => last_error = e,
            }
        }
        panic!("cannot start Chromium under chromedriver: {last_error}");
    }

    async fn try_launch(profile: &Path) -> Result<Chrome, String> {
        let port = free_port();
        let mut driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} ({e}); {INSTALL}", chromedriver()));
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Ok(Some(status)) = driver.try_wait() {
                return Err(format!("chromedriver exited: {status}"));
            }
            if started.elapsed() > PATIENCE {
                let _ = driver.kill().await;
                return Err("chromedriver did not listen within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--window-size=1100,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        match client {
            Ok(client) => Ok(Chrome {
                client,
                profile: profile.to_path_buf(),
                driver,
            }),
            Err(e) => {
                let _ = driver.kill().await;
                Err(e.to_string())
            }
        }
    }

    /// Quits the browser the way a person closes it (Chromium writes its profile to disk), then
    /// stops chromedriver.
    pub async fn quit(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
        let _ = self.driver.wait().await;
    }
}

/// What the tests do with a page; every wait gives up after ten seconds.
#[derive(Clone)]
pub struct Browser {
    /// Names the browser in screenshots and failure reports.
    pub label: String,
    /// The WebDriver session.
    pub client: fantoccini::Client,
}

impl Browser {
    /// Opens `url` and waits for it to load.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// The path (and query) of the page shown now.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits until the page shown is at `path` (query ignored) and returns the full path.
    pub async fn wait_for_path(&self, path: &str) -> String {
        let started = Instant::now();
        loop {
            let now = self.path().await;
            if now.split('?').next() == Some(path) {
                return now;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "[{}] still at {now} after 10 s, expected {path}",
                self.label
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for an element matching `css` and returns it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("[{}] no element {css}: {e}", self.label))
    }

    /// Whether an element matching `css` is on the page now.
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find elements")
            .is_empty()
    }

    /// The visible text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("element text")
    }

    /// Types `value` into the empty form field named `name`.
    pub async fn fill(&self, name: &str, value: &str) {
        let field = self.find(&format!("[name=\"{name}\"]")).await;
        field.clear().await.expect("clear field");
        field.send_keys(value).await.expect("type into field");
    }

    /// Clicks the element matching `css` (a button submits its form).
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    /// The whole page's visible text.
    pub async fn page_text(&self) -> String {
        self.text("body").await
    }

    /// Runs `script` in the page and returns what it returns.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .expect("run script")
    }
}
