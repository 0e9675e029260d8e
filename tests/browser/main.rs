//! The pages in a real browser: headless Chromium over WebDriver, against the site served on a
//! local port, on a fresh database per test (SQLite, or PostgreSQL when `DATABASE_URL` says so).
//! Each test leaves a screenshot of its last page under `target/screenshots/`.

#[path = "../common/db.rs"]
mod db;
// The real SMTP server the mail tests send to (shared with tests/app).
#[allow(dead_code)]
#[path = "../common/smtp.rs"]
mod smtp;

mod chrome;
mod flows;
mod other_origin;
mod scene;
mod site;

mod admin;
mod cookie;
mod cross_origin;
mod email_change;
mod invitation;
mod passkeys;
mod password_reset;
mod refresh;
mod remember;
mod signin;
mod signout;
mod signup;
mod sudo;
mod two_factor;
mod width;
