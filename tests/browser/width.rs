//! The account and admin pages fit the screen: at 1280 × 800 every column of every table shows
//! without scrolling sideways, at 390 × 844 (a phone) and 320 × 640 (the narrowest width WCAG's
//! reflow criterion asks for) every field of every row shows, and no page is ever wider than the
//! window, with long usernames, emails, key names and user agents in the data. A full-page
//! screenshot of each page at each size goes to `target/screenshots/width/`.

use latchkey::models::{ApiKey, AuditEvent, KeyScope, NewAuditEvent, Role, Session, User};
use serde_json::Value;
use time::Duration;

use crate::chrome::Browser;
use crate::flows::sign_in;
use crate::scene::{screenshot_dir, Scene};
use crate::site::Site;

/// The longest username the sign-up rules allow (32 characters), signed in for every page.
const LONG_NAME: &str = "alexandria_montgomery_whitfield1";
/// A long email: 95 characters, no spaces.
const LONG_EMAIL: &str =
    "alexandria.montgomery.whitfield.the.third@department-of-computer-science.example-university.edu";

/// User agents as browsers send them, and one that never offers a space to break at.
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro Build/AP1A.240405.002) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
    "curl/8.7.1-DEV+libcurl/8.7.1+OpenSSL/3.2.1+zlib/1.3.1+brotli/1.1.0+zstd/1.5.6+libidn2/2.3.7+libpsl/0.21.5+nghttp2/1.61.0+ngtcp2/1.4.0",
];

/// What each page is called in the screenshots, and its path (`{id}` is the long user's id).
const PAGES: [(&str, &str); 10] = [
    ("account", "/account"),
    ("account-sessions", "/account/sessions"),
    ("account-api-keys", "/account/api-keys"),
    ("account-passkeys", "/account/passkeys"),
    ("account-two-factor", "/account/two-factor"),
    ("admin", "/admin"),
    ("admin-user", "/admin/users/{id}"),
    ("admin-audit", "/admin/audit"),
    ("admin-invitations", "/admin/invitations"),
    ("admin-mail", "/admin/mail"),
];

/// The window sizes: a laptop, a phone held upright, and WCAG's narrowest.
const SIZES: [(u32, u32); 3] = [(1280, 800), (390, 844), (320, 640)];

/// Measures the page shown: the document's width against the window's, and every table cell
/// that is cut off, outside its table's box or the window, or (when the header row is not shown)
/// without a `data-label` to say which column it is.
const MEASURE: &str = r#"
const vw = window.innerWidth;
const problems = [];
const describe = (el) => {
  const text = (el.textContent || "").trim().replace(/\s+/g, " ");
  return el.tagName.toLowerCase() + " \"" + (text.length > 30 ? text.slice(0, 30) + "…" : text) + "\"";
};
const tables = [...document.querySelectorAll("table")];
tables.forEach((table, i) => {
  const wrap = table.closest(".table-wrap") || table.parentElement;
  const name = "table " + (i + 1) + " (" + [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim()).join(", ") + ")";
  if (wrap.scrollWidth > wrap.clientWidth + 1) {
    problems.push(name + ": " + wrap.scrollWidth + " px of content in a " + wrap.clientWidth + " px box");
  }
  const box = wrap.getBoundingClientRect();
  const headShown = table.tHead && table.tHead.getBoundingClientRect().height > 2;
  const cells = [...table.querySelectorAll("tbody th, tbody td")];
  const hidden = [], outside = [], unlabelled = [], clipped = [], sticking = [];
  cells.forEach((cell) => {
    const r = cell.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) { hidden.push(describe(cell)); return; }
    if (r.left < box.left - 1 || r.right > box.right + 1 || r.left < -1 || r.right > vw + 1) {
      outside.push(describe(cell) + " at x " + Math.round(r.left) + "–" + Math.round(r.right));
    }
    if (!headShown && cell.tagName === "TD" && !cell.getAttribute("data-label")) unlabelled.push(describe(cell));
    for (const el of [cell, ...cell.querySelectorAll("*")]) {
      const style = getComputedStyle(el);
      if (style.position === "absolute" && style.clip !== "auto") continue;
      const er = el.getBoundingClientRect();
      if (style.overflowX !== "visible" && el.scrollWidth > el.clientWidth + 1) {
        clipped.push(describe(el) + " (" + el.scrollWidth + " px shown in " + el.clientWidth + ")");
      } else if (el !== cell && er.width > 0 && (er.right > r.right + 1 || er.left < r.left - 1)) {
        sticking.push(describe(el));
      }
    }
  });
  const say = (list, what) => {
    if (list.length) problems.push(name + ": " + list.length + " of " + cells.length + " cells " + what + ", e.g. " + list.slice(0, 2).join("; "));
  };
  say(hidden, "not shown");
  say(outside, "outside the table's box (x " + Math.round(box.left) + "–" + Math.round(box.right) + ") or the window");
  say(unlabelled, "without a data-label while the header row is hidden");
  say(clipped, "with content cut off");
  say(sticking, "with content sticking out");
});
return {
  tables: tables.map((table) => {
    const wrap = table.closest(".table-wrap") || table.parentElement;
    return wrap.scrollWidth + "/" + wrap.clientWidth;
  }),
  width: document.documentElement.scrollWidth,
  client: document.documentElement.clientWidth,
  viewport: vw,
  problems: problems,
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_and_admin_pages_fit_the_window_from_1280_to_320_px() {
    let Some(scene) = Scene::new("account_and_admin_pages_fit_the_window") else {
        return;
    };
    let site = scene.site().await;
    let me = seed(&site).await;
    let browser = scene.browser("main").await;
    let newcomer = scene.browser("newcomer").await;
    scene
        .run(async {
            sign_in(&browser, &site, LONG_NAME, false).await;
            let dir = screenshot_dir().join("width");
            std::fs::create_dir_all(&dir).expect("screenshot folder");
            let mut failures = Vec::new();
            let mut report = Vec::new();
            for (width, height) in SIZES {
                set_viewport(&browser, width, height).await;
                for (name, path) in PAGES {
                    let path = path.replace("{id}", &me.id);
                    browser.open(&site.url(&path)).await;
                    browser.wait_for_path(&path).await;
                    browser.find("footer").await;
                    let shown = check(&browser, &path, width, &mut failures).await;
                    report.push(format!("{path} at {width} px: {shown}"));
                    let file = dir.join(format!("{name}-{width}.png"));
                    screenshot(&browser, width, height, &file).await;
                }
            }
            // The two-factor page while setting up: a QR code and a long key (a user without
            // two-factor yet: the admin already has it).
            sign_in(&newcomer, &site, "ada", false).await;
            newcomer.open(&site.url("/account/two-factor")).await;
            newcomer
                .click("form[action='/account/two-factor/setup'] button")
                .await;
            newcomer.find(".qr svg").await;
            for (width, height) in SIZES {
                set_viewport(&newcomer, width, height).await;
                newcomer.open(&site.url("/account/two-factor")).await;
                newcomer.find(".qr svg").await;
                let page = "/account/two-factor (setting up)";
                let shown = check(&newcomer, page, width, &mut failures).await;
                report.push(format!("{page} at {width} px: {shown}"));
                let file = dir.join(format!("account-two-factor-setup-{width}.png"));
                screenshot(&newcomer, width, height, &file).await;
            }
            eprintln!(
                "document width / page area, table content / table box:\n{}",
                report.join("\n")
            );
            assert!(
                failures.is_empty(),
                "{} problem(s):\n{}",
                failures.len(),
                failures.join("\n")
            );
        })
        .await;
}

/// Several users (one with a 32-character name and a long email, who is the admin signed in;
/// one disabled), that admin's API keys in every state, sessions from other devices, and audit
/// events with long user agents and details. Returns the signed-in admin.
async fn seed(site: &Site) -> User {
    let me = site
        .create_user_with_email(LONG_NAME, LONG_EMAIL, Role::Admin)
        .await;
    site.create_user("ada", Role::User).await;
    site.create_user("linus", Role::Admin).await;
    site.create_user_with_email(
        "margaret.hamilton-apollo_11",
        "margaret.hamilton+software-engineering@apollo-guidance-computer.example.org",
        Role::User,
    )
    .await;
    let grace = site.create_user("grace_hopper", Role::User).await;

    let id = me.id.clone();
    let grace_id = grace.id.clone();
    site.db()
        .run(move |conn| {
            let now = latchkey::clock::Clock::default().db_now();
            User::set_disabled(conn, &grace_id, true, now)?;
            let keys = [
                ("Nightly backup script for the production database cluster", KeyScope::Read, None, true, false),
                ("deploy", KeyScope::Full, Some(now + Duration::days(30)), false, false),
                ("old laptop", KeyScope::Read, Some(now - Duration::days(1)), true, false),
                ("monitoring-dashboard-readonly-token-for-grafana", KeyScope::Full, None, false, true),
            ];
            for (name, scope, expires, used, revoked) in keys {
                let (mut key, _) = ApiKey::generate(&id, name, scope, now - Duration::days(3), expires);
                if used {
                    key.last_used_at = Some(now - Duration::hours(5));
                }
                if revoked {
                    key.revoked_at = Some(now - Duration::hours(1));
                }
                key.insert(conn)?;
            }
            let ips = ["203.0.113.54", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "198.51.100.7"];
            for (agent, ip) in AGENTS.iter().zip(ips) {
                Session::new(&id, now - Duration::hours(2), Duration::days(30), true, agent, ip)
                    .insert(conn)?;
            }
            let events = [
                ("login_ok", Some(LONG_NAME), Some(LONG_NAME), AGENTS[0], None),
                ("login_failed", None, Some("someone-typed-a-very-long-name-here@example.com"), AGENTS[3], Some("wrong password (attempt 3 of 5 before the account is locked for fifteen minutes)")),
                ("role_changed", Some(LONG_NAME), Some("margaret.hamilton-apollo_11"), AGENTS[1], Some("user → admin")),
                ("api_key_created", Some(LONG_NAME), Some(LONG_NAME), AGENTS[2], Some("Nightly backup script for the production database cluster (read)")),
                ("csrf_rejected", None, None, AGENTS[3], Some("POST /admin/users/0b5c2f3e-8a4d-4c55-9d6e-1f2a3b4c5d6e/role from origin http://evil.example.net")),
            ];
            for (kind, actor, subject, agent, detail) in events {
                AuditEvent::record(
                    conn,
                    &NewAuditEvent {
                        at: now - Duration::minutes(10),
                        kind: kind.to_string(),
                        actor_id: actor.map(|_| id.clone()),
                        actor: actor.map(str::to_string),
                        subject_id: None,
                        subject: subject.map(str::to_string),
                        ip: Some("2001:0db8:85a3:0000:0000:8a2e:0370:7334".into()),
                        user_agent: Some(agent.to_string()),
                        detail: detail.map(str::to_string),
                    },
                )?;
            }
            let invited = "a.very.long.invited.address+for-the-width-test@subdomain.example.org";
            let issued = latchkey::models::Invitation::issue(invited, Role::Admin, Some(&id), now);
            latchkey::models::AccountToken::insert(conn, &issued)?;
            latchkey::models::OutboxMail::queue(
                conn,
                &latchkey::models::OutboxMail {
                    id: "width-test-mail".into(),
                    kind: "invitation".into(),
                    user_id: None,
                    recipient: invited.into(),
                    subject: "You are invited to latchkey".into(),
                    body: String::new(),
                    created_at: now - Duration::minutes(5),
                    attempts: 12,
                    next_attempt_at: now,
                    claimed_by: None,
                    claimed_until: None,
                    sent_at: None,
                    failed_at: Some(now - Duration::minutes(1)),
                    last_error: Some("mail server: Connection error: Connection refused (os error 111) while talking to smtp.mail-relay.example.org:587".into()),
                },
            )?;
            Ok(())
        })
        .await
        .expect("seed keys, sessions and events");
    me
}

/// Makes the page area (not the window) `width` × `height` CSS pixels.
async fn set_viewport(browser: &Browser, width: u32, height: u32) {
    browser
        .client
        .set_window_size(width, height)
        .await
        .expect("resize");
    let inner = browser
        .eval("return [window.innerWidth, window.innerHeight];")
        .await;
    let (iw, ih) = (inner[0].as_u64().unwrap(), inner[1].as_u64().unwrap());
    if (iw, ih) != (u64::from(width), u64::from(height)) {
        let w = u64::from(width) * 2 - iw;
        let h = u64::from(height) * 2 - ih;
        browser
            .client
            .set_window_size(w as u32, h as u32)
            .await
            .expect("resize");
    }
    let inner = browser.eval("return window.innerWidth;").await;
    assert_eq!(
        inner.as_u64(),
        Some(u64::from(width)),
        "the window cannot be made {width} px wide inside"
    );
}

/// Checks the page shown and adds what is wrong to `failures`; returns what was measured: the
/// document's width over the page area's, and each table's content width over its box's.
async fn check(browser: &Browser, page: &str, width: u32, failures: &mut Vec<String>) -> String {
    let measured: Value = browser.eval(MEASURE).await;
    let shown = measured["width"].as_u64().expect("document width");
    let viewport = measured["viewport"].as_u64().expect("viewport width");
    // The page area is the window less its vertical scroll bar, if any.
    let client = measured["client"].as_u64().expect("page area width");
    if shown > client.min(viewport) {
        failures.push(format!(
            "{page} at {width} px: the document is {shown} px wide in a {viewport} px window \
             ({client} px inside the scroll bar)"
        ));
    }
    for problem in measured["problems"].as_array().expect("problems") {
        failures.push(format!(
            "{page} at {width} px: {}",
            problem.as_str().unwrap()
        ));
    }
    let tables: Vec<&str> = measured["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if tables.is_empty() {
        format!("{shown}/{client} px")
    } else {
        format!("{shown}/{client} px, tables {}", tables.join(", "))
    }
}

/// Saves the whole page (the window made as tall as the page for the moment) to `file`.
async fn screenshot(browser: &Browser, width: u32, height: u32, file: &std::path::Path) {
    let tall = browser
        .eval("return document.documentElement.scrollHeight;")
        .await
        .as_u64()
        .unwrap_or(u64::from(height)) as u32;
    set_viewport(browser, width, tall.max(height)).await;
    let png = browser.client.screenshot().await.expect("screenshot");
    std::fs::write(file, png).expect("write screenshot");
    set_viewport(browser, width, height).await;
}
