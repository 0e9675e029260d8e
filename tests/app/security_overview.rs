//! The security overview: failed sign-ins, lockouts and throttled requests per hour and per day
//! as an SVG chart with a table of the same numbers, and the most targeted accounts and busiest
//! addresses linking to the filtered audit log.

use latchkey::models::{AuditEvent, NewAuditEvent, Role};
use rocket::http::Status;
use time::{Duration, PrimitiveDateTime};

use crate::helpers::*;

/// Appends an audit row `ago` before the site's now.
fn seed(app: &TestApp, ago: Duration, kind: &str, subject: &str, ip: &str, detail: &str) {
    let event = NewAuditEvent {
        at: app.clock().db_now() - ago,
        kind: kind.into(),
        actor_id: None,
        actor: None,
        subject_id: None,
        subject: Some(subject.into()),
        ip: Some(ip.into()),
        user_agent: None,
        detail: Some(detail.into()),
    };
    AuditEvent::record(&mut app.pool().get().unwrap(), &event).unwrap();
}

/// The page as an admin sees it, with runs of white space made one space.
fn overview(app: &TestApp) -> String {
    let response = app.client.get("/admin/security").dispatch();
    assert_eq!(response.status(), Status::Ok);
    let body = response.into_string().unwrap();
    body.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The three totals (failed, lockouts, throttled) the page shows for `period` ("hours", "days").
fn totals(body: &str, period: &str) -> Vec<i64> {
    let start = body
        .find(&format!(r#"id="{period}-totals""#))
        .expect("totals");
    let section = &body[start..start + body[start..].find("</ul>").unwrap()];
    (0..3)
        .map(|i| {
            let marker = format!(r#"data-series="{i}">"#);
            let at = section.find(&marker).expect("series total") + marker.len();
            let end = at + section[at..].find('<').unwrap();
            section[at..end].parse().unwrap()
        })
        .collect()
}

fn hour_label(t: PrimitiveDateTime) -> String {
    format!("{:02}:00", t.hour())
}

#[test]
fn the_overview_counts_failed_sign_ins_lockouts_and_throttled_requests_per_period() {
    let app = spawn_app();
    // A real failed sign-in through the form.
    let response = app.login("ghost", "Wrong-password-here-1");
    assert_ne!(response.status(), Status::SeeOther);
    drop(response);
    app.sign_in_as("boss", Role::Admin);
    let hour = Duration::hours(1);
    for _ in 0..3 {
        seed(
            &app,
            Duration::minutes(1),
            "login_failed",
            "alma",
            "10.0.0.1",
            "wrong_password",
        );
    }
    seed(&app, hour * 2, "login_locked", "alma", "10.0.0.1", "locked");
    seed(
        &app,
        hour * 25,
        "two_factor_failed",
        "bert",
        "10.0.0.2",
        "wrong_code",
    );
    // Fewer than alma's, but first by name: the list is ordered by count.
    seed(
        &app,
        hour * 30,
        "login_failed",
        "aaron",
        "10.0.0.2",
        "wrong_password",
    );
    for _ in 0..2 {
        seed(
            &app,
            Duration::days(3),
            "login_failed",
            "alma",
            "10.0.0.9",
            "throttled",
        );
    }
    // Out of the window, and of a kind the overview does not count.
    seed(
        &app,
        Duration::days(8),
        "login_failed",
        "old",
        "10.0.0.3",
        "wrong_password",
    );
    seed(&app, hour, "login_ok", "boss", "10.0.0.4", "password");

    let body = overview(&app);
    assert!(body.contains("<h1 class=\"page-title\">Security overview</h1>"));
    assert_eq!(totals(&body, "hours"), vec![4, 1, 0], "last 24 hours");
    assert_eq!(totals(&body, "days"), vec![6, 1, 2], "last 7 days");
    // The chart and its table fallback carry the same bucket.
    let locked_hour = hour_label(app.clock().db_now() - hour * 2);
    assert!(body.contains(r#"<svg class="chart""#));
    assert!(body.contains(&format!("<title>{locked_hour}: 1 lockouts</title>")));
    assert!(body.contains(&format!(
        r#"<th scope="row">{locked_hour}</th> <td>0</td> <td>1</td> <td>0</td>"#
    )));
    // Most targeted accounts (failed + lockouts) and busiest addresses, most first.
    let since = (app.clock().db_now().date() - Duration::days(6)).to_string();
    let alma_link = format!(
        r#"href="/admin/audit?user=alma&amp;from={since}">alma</a> <span class="security-count">4</span>"#
    );
    let accounts = &body[body.find(r#"id="top-accounts""#).unwrap()..];
    assert!(accounts.contains(&alma_link), "{accounts}");
    let (alma, aaron, ghost) = (
        accounts.find(">alma<").unwrap(),
        accounts.find(">aaron<").unwrap(),
        accounts.find(">ghost<").unwrap(),
    );
    assert!(alma < aaron && alma < ghost, "most first");
    assert!(!accounts[..accounts.find("</ol>").unwrap()].contains(">old<"));
    let addresses = &body[body.find(r#"id="top-addresses""#).unwrap()..];
    assert!(addresses.contains(&format!(
        r#"href="/admin/audit?ip=10.0.0.1&amp;from={since}">10.0.0.1</a> <span class="security-count">4</span>"#
    )));
    assert!(addresses.contains(&format!(
        r#"href="/admin/audit?ip=10.0.0.9&amp;from={since}">10.0.0.9</a> <span class="security-count">2</span>"#
    )));
    assert!(!addresses.contains("10.0.0.3") && !addresses.contains("10.0.0.4"));

    // The links land on the audit log filtered for them.
    let by_name = app
        .client
        .get(format!("/admin/audit?user=alma&from={since}"))
        .dispatch()
        .into_string()
        .unwrap();
    assert!(by_name.contains("6 events"), "alma's events this week");
    let by_address = app
        .client
        .get(format!("/admin/audit?ip=10.0.0.9&from={since}"))
        .dispatch()
        .into_string()
        .unwrap();
    assert!(by_address.contains("2 events"));
    assert!(by_address.contains(r#"name="ip" type="text" value="10.0.0.9""#));
}

#[test]
fn a_user_gets_403_and_a_visitor_is_sent_to_sign_in_from_the_overview() {
    let app = spawn_app();
    let response = app.client.get("/admin/security").dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    assert!(location(&response).starts_with("/login"));
    drop(response);
    app.sign_in_as("pleb", Role::User);
    let response = app.client.get("/admin/security").dispatch();
    assert_eq!(response.status(), Status::Forbidden);
    let body = response.into_string().unwrap();
    assert!(
        !body.contains(r#"href="/admin/security""#),
        "no admin nav for a user"
    );
}

#[test]
fn the_overview_has_no_script_or_inline_style_and_escapes_hostile_names() {
    let app = spawn_app();
    app.sign_in_as("boss", Role::Admin);
    let hostile = "<script>x</script>";
    seed(
        &app,
        Duration::minutes(5),
        "login_failed",
        hostile,
        "<b>1</b>",
        "wrong_password",
    );
    let body = overview(&app);
    assert!(
        !body.contains("<script"),
        "no script, and the name is escaped"
    );
    assert!(!body.contains("style="), "the CSP blocks inline style");
    assert!(!body.contains("<style"));
    assert!(body.contains("&lt;script&gt;x&lt;&#x2F;script&gt;</a>"));
    assert!(body.contains("user=%3Cscript%3Ex%3C%2Fscript%3E&amp;from="));
    assert!(body.contains("ip=%3Cb%3E1%3C%2Fb%3E&amp;from="));
    assert!(body.contains("&lt;b&gt;1&lt;&#x2F;b&gt;</a>"));
    // The admin pages link to the overview.
    assert!(body.contains(r#"<a href="/admin/security">Security</a>"#));
    let users = app.client.get("/admin").dispatch().into_string().unwrap();
    assert!(users.contains(r#"href="/admin/security""#));
}

#[test]
fn the_overview_renders_with_no_events() {
    let app = spawn_app();
    app.sign_in_as("boss", Role::Admin);
    let body = overview(&app);
    assert_eq!(totals(&body, "hours"), vec![0, 0, 0]);
    assert_eq!(totals(&body, "days"), vec![0, 0, 0]);
    assert_eq!(body.matches(r#"<svg class="chart""#).count(), 2);
    assert!(body.contains("No failed sign-ins in the last 7 days."));
    assert!(!body.contains(r#"id="top-accounts""#));
}

#[test]
fn real_failures_lockouts_and_throttled_sign_ins_are_counted() {
    let app = spawn_app_with(|f| f.merge(("login_per_ip_per_minute", 6)));
    app.create_user("alma", Role::User);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(app.login("alma", "Wrong-password-here-1").status());
    }
    assert_eq!(statuses[6..], [Status::TooManyRequests; 2]);
    let failed = audit_events(&app, "login_failed");
    let throttled = failed
        .iter()
        .filter(|e| e.detail.as_deref() == Some("throttled"))
        .count() as i64;
    assert_eq!(throttled, 2);
    let refused = failed.len() as i64 - throttled;
    assert_eq!(audit_events(&app, "login_locked").len(), 1);
    // Past the address's window, the admin signs in from the same place.
    app.clock().advance(Duration::minutes(2));
    app.sign_in_as("boss", Role::Admin);
    let body = overview(&app);
    assert_eq!(totals(&body, "hours"), vec![refused, 1, 2]);
    assert_eq!(totals(&body, "days"), vec![refused, 1, 2]);
    let accounts = &body[body.find(r#"id="top-accounts""#).unwrap()..];
    assert!(accounts.contains(&format!(
        r#">alma</a> <span class="security-count">{}</span>"#,
        refused + 1
    )));
}
