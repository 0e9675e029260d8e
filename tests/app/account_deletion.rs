//! Deleting an account: by its owner (sudo mode and the username typed) or an admin, never the
//! last active admin. Every row about the account goes, the audit trail keeps its rows without
//! personal data plus a tombstone, the sessions and API keys stop working on every instance
//! within a second, the name and address are free again, and a goodbye mail goes out.

use std::time::Duration as StdDuration;

use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
use latchkey::db::schema::{
    account_tokens, api_keys, audit_events, login_attempts, outbox, recovery_codes, refresh_tokens,
    sessions, trusted_devices, two_factor, users,
};
use latchkey::models::{AccountToken, AuditEvent, DeletedBy, Role, TokenFor, TokenPurpose, User};
use rocket::http::{ContentType, Header, Status};
use rocket::local::blocking::Client;
use serde_json::json;

use crate::data_export::{create_key, past_the_sudo_window};
use crate::helpers::*;
use crate::smtp::{MailServer, Options};

const GONE: &str = "Your account has been deleted.";

fn delete_own<'a>(app: &'a TestApp, typed: &str) -> rocket::local::blocking::LocalResponse<'a> {
    app.post_form("/account/delete", &[("username", typed)])
}

fn flash_after(app: &TestApp, to: &str) -> String {
    app.client
        .get(to.to_string())
        .dispatch()
        .into_string()
        .unwrap()
}

/// Every audit row about `user_id`, as actor or subject.
fn rows_about(app: &TestApp, user_id: &str) -> Vec<AuditEvent> {
    AuditEvent::about_user(&mut app.pool().get().unwrap(), user_id).unwrap()
}

fn count<T>(rows: Vec<T>) -> usize {
    rows.len()
}

fn exchange(client: &Client, key: &str) -> Status {
    client
        .post("/api/token")
        .header(ContentType::JSON)
        .body(json!({ "api_key": key }).to_string())
        .dispatch()
        .status()
}

fn bearer_status(client: &Client, token: &str) -> Status {
    client
        .get("/api/me")
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .status()
}

fn api_token_from_key(client: &Client, key: &str) -> String {
    let response = client
        .post("/api/token")
        .header(ContentType::JSON)
        .body(json!({ "api_key": key }).to_string())
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    let body: serde_json::Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

#[test]
fn deleting_needs_a_recent_proof_and_the_username_typed() {
    let app = spawn_app();
    app.sign_in_as("ella", Role::User);
    past_the_sudo_window(&app);

    // Without a recent proof: "Confirm it's you" first, nothing deleted.
    let response = app.client.get("/account/delete").dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/confirm?next=/account/delete");
    drop(response);
    let response = delete_own(&app, "ella");
    assert_eq!(response.status(), Status::SeeOther);
    assert!(
        location(&response).starts_with("/confirm"),
        "{}",
        location(&response)
    );
    drop(response);
    assert!(
        app.user("ella").is_some(),
        "nothing deleted without a proof"
    );

    let response = app.post_form("/confirm?next=/account/delete", &[("password", PASSWORD)]);
    assert_eq!(location(&response), "/account/delete");
    drop(response);
    let page = app.client.get("/account/delete").dispatch();
    assert_eq!(page.status(), Status::Ok);
    let page = page.into_string().unwrap();
    assert!(
        page.contains("What is deleted") && page.contains("What is kept"),
        "{page}"
    );
    assert!(page.contains(r#"name="username""#));
    assert!(!page.contains("last active administrator"), "{page}");

    // The wrong name, or none: the form again with the reason beside the field.
    for (typed, says) in [
        ("ellb", "That is not your username."),
        ("", "Type your username to confirm."),
    ] {
        let response = delete_own(&app, typed);
        assert_eq!(response.status(), Status::UnprocessableEntity, "{typed:?}");
        let body = response.into_string().unwrap();
        assert!(body.contains(says), "{says} in {body}");
        assert!(app.user("ella").is_some(), "nothing deleted for {typed:?}");
    }
    assert!(audit_events(&app, "account_deleted").is_empty());

    let response = delete_own(&app, " Ella ");
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/");
    let cleared = set_cookies(&response)
        .iter()
        .any(|c| c.starts_with(&format!("{COOKIE}=;")));
    assert!(
        cleared,
        "the session cookie is cleared: {:?}",
        set_cookies(&response)
    );
    drop(response);
    assert!(flash_after(&app, "/").contains(GONE));
    assert!(app.user("ella").is_none());
    assert_eq!(audit_events(&app, "account_deleted").len(), 1);
}

#[test]
fn the_last_active_admin_cannot_delete_their_account() {
    let app = spawn_app();
    let boss = app.sign_in_as("boss", Role::Admin);
    let page = app
        .client
        .get("/account/delete")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(
        page.contains("You are the last active administrator"),
        "told up front: {page}"
    );
    let response = delete_own(&app, "boss");
    assert_eq!(response.status(), Status::UnprocessableEntity);
    let body = response.into_string().unwrap();
    assert!(
        body.contains("You are the last active administrator, so your account cannot be deleted."),
        "{body}"
    );
    assert!(app.user("boss").is_some());
    assert!(audit_events(&app, "account_deleted").is_empty());

    // A disabled admin does not count; another active one does.
    let other = app.create_user("deputy", Role::Admin);
    User::set_disabled(
        &mut app.pool().get().unwrap(),
        &other.id,
        true,
        app.clock().db_now(),
    )
    .unwrap();
    let response = delete_own(&app, "boss");
    assert_eq!(response.status(), Status::UnprocessableEntity);
    drop(response);
    User::set_disabled(
        &mut app.pool().get().unwrap(),
        &other.id,
        false,
        app.clock().db_now(),
    )
    .unwrap();
    let response = delete_own(&app, "boss");
    assert_eq!(location(&response), "/");
    drop(response);
    assert!(User::find(&mut app.pool().get().unwrap(), &boss.id)
        .unwrap()
        .is_none());
}

#[test]
fn two_admins_deleting_themselves_at_once_leave_one_admin() {
    let app = spawn_app();
    let a = app.create_user("anna", Role::Admin);
    let b = app.create_user("bert", Role::Admin);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let now = app.clock().db_now();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = [a.id.clone(), b.id.clone()]
            .into_iter()
            .map(|id| {
                let barrier = barrier.clone();
                let pool = app.pool();
                scope.spawn(move || {
                    let mut conn = pool.get().unwrap();
                    barrier.wait();
                    User::delete_with_trail(&mut conn, &id, now, &DeletedBy::Owner)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let deleted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(deleted, 1, "{results:?}");
    assert!(results
        .iter()
        .any(|r| matches!(r, Err(latchkey::error::Error::LastAdmin))));
    assert_eq!(
        User::count_active_admins(&mut app.pool().get().unwrap()).unwrap(),
        1
    );
}

#[test]
fn deletion_removes_every_row_about_the_account_and_anonymises_the_audit_trail() {
    let app = spawn_app();
    let user = app.sign_in_as("ella", Role::User);
    create_key(&app, "laptop key");
    // A second session (its refresh value too), a failed sign-in, a link and a mail.
    let other = second_instance(&app);
    login_on(
        &other,
        "ella",
        Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
    );
    app.enable_two_factor(&user);
    // From a browser without her device cookie, so the account's own counter counts it.
    let stranger = second_instance(&app);
    let csrf = csrf_token_of(&stranger);
    let response = stranger
        .post("/login")
        .header(ContentType::Form)
        .header(Header::new(
            "User-Agent",
            "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0",
        ))
        .remote("203.0.113.9:4000".parse().unwrap())
        .body(form(&[
            ("username", "ella"),
            ("password", "not-her-password-at-all"),
            ("csrf_token", &csrf),
        ]))
        .dispatch();
    assert_ne!(response.status(), Status::SeeOther);
    drop(response);
    let now = app.clock().db_now();
    {
        let mut conn = app.pool().get().unwrap();
        let about = |email: Option<&str>, user_id: Option<&str>| TokenFor {
            user_id: user_id.map(str::to_string),
            email: email.map(str::to_string),
            role: None,
            created_by: None,
        };
        let link = AccountToken::issue(
            TokenPurpose::VerifyEmail,
            about(Some("ella@example.com"), Some(&user.id)),
            now,
            time::Duration::hours(1),
        );
        AccountToken::insert(&mut conn, &link).unwrap();
        // An invitation to her address from before the account existed.
        let invitation = AccountToken::issue(
            TokenPurpose::Invitation,
            about(Some("Ella@Example.com"), None),
            now,
            time::Duration::days(7),
        );
        AccountToken::insert(&mut conn, &invitation).unwrap();
    }
    let new_password = "another-Lantern-orbit-91";
    let response = app.post_form(
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", new_password),
            ("new_password_confirm", new_password),
        ],
    );
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);

    let mut conn = app.pool().get().unwrap();
    let sids: Vec<String> = sessions::table
        .filter(sessions::user_id.eq(&user.id))
        .select(sessions::id)
        .load(&mut conn)
        .unwrap();
    let login_key = format!("user:{}", user.id);
    // Everything is there before.
    let before = [
        ("sessions", sids.len()),
        (
            "refresh_tokens",
            count(
                refresh_tokens::table
                    .filter(refresh_tokens::session_id.eq_any(&sids))
                    .select(refresh_tokens::token_hash)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "api_keys",
            count(
                api_keys::table
                    .filter(api_keys::user_id.eq(&user.id))
                    .select(api_keys::id)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "two_factor",
            count(
                two_factor::table
                    .filter(two_factor::user_id.eq(&user.id))
                    .select(two_factor::user_id)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "recovery_codes",
            count(
                recovery_codes::table
                    .filter(recovery_codes::user_id.eq(&user.id))
                    .select(recovery_codes::id)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "trusted_devices",
            count(
                trusted_devices::table
                    .filter(trusted_devices::user_id.eq(&user.id))
                    .select(trusted_devices::nonce)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "account_tokens",
            count(
                account_tokens::table
                    .filter(account_tokens::email.is_not_null())
                    .select(account_tokens::token_hash)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "outbox",
            count(
                outbox::table
                    .filter(outbox::user_id.eq(&user.id))
                    .select(outbox::id)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "login_attempts",
            count(
                login_attempts::table
                    .filter(login_attempts::login_key.eq(&login_key))
                    .select(login_attempts::login_key)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
    ];
    for (table, n) in before {
        assert!(n > 0, "the test set up rows in {table}");
    }
    let about_before = rows_about(&app, &user.id);
    assert!(
        about_before
            .iter()
            .any(|e| e.ip.as_deref() == Some("203.0.113.9") && e.user_agent.is_some()),
        "rows with an address and a browser before: {about_before:?}"
    );
    drop(conn);

    let response = delete_own(&app, "ella");
    assert_eq!(location(&response), "/");
    drop(response);

    let mut conn = app.pool().get().unwrap();
    let after = [
        (
            "users",
            count(
                users::table
                    .filter(users::id.eq(&user.id))
                    .select(users::id)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "sessions",
            count(
                sessions::table
                    .filter(sessions::user_id.eq(&user.id))
                    .select(sessions::id)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "refresh_tokens",
            count(
                refresh_tokens::table
                    .filter(refresh_tokens::session_id.eq_any(&sids))
                    .select(refresh_tokens::token_hash)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "api_keys",
            count(
                api_keys::table
                    .filter(api_keys::user_id.eq(&user.id))
                    .select(api_keys::id)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "two_factor",
            count(
                two_factor::table
                    .filter(two_factor::user_id.eq(&user.id))
                    .select(two_factor::user_id)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "recovery_codes",
            count(
                recovery_codes::table
                    .filter(recovery_codes::user_id.eq(&user.id))
                    .select(recovery_codes::id)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "trusted_devices",
            count(
                trusted_devices::table
                    .filter(trusted_devices::user_id.eq(&user.id))
                    .select(trusted_devices::nonce)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "account_tokens",
            count(
                account_tokens::table
                    .select(account_tokens::token_hash)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "outbox (hers)",
            count(
                outbox::table
                    .filter(outbox::user_id.eq(&user.id))
                    .select(outbox::id)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
        (
            "login_attempts",
            count(
                login_attempts::table
                    .filter(login_attempts::login_key.eq(&login_key))
                    .select(login_attempts::login_key)
                    .load::<String>(&mut conn)
                    .unwrap(),
            ),
        ),
    ];
    for (table, n) in after {
        assert_eq!(n, 0, "rows about her left in {table}");
    }
    // The one mail to her address left is the goodbye, naming no account.
    let to_her: Vec<(String, Option<String>)> = outbox::table
        .filter(outbox::recipient.eq("ella@example.com"))
        .select((outbox::kind, outbox::user_id))
        .load(&mut conn)
        .unwrap();
    assert_eq!(to_her, vec![("account_deleted".to_string(), None)]);

    // The audit trail: the same rows (and a tombstone), without her name, address or browser.
    let about_after = rows_about(&app, &user.id);
    assert_eq!(about_after.len(), about_before.len() + 1);
    for (was, now) in about_before.iter().zip(&about_after) {
        assert_eq!((was.id, was.at, &was.kind), (now.id, now.at, &now.kind));
    }
    for e in &about_after {
        assert!(e.ip.is_none() && e.user_agent.is_none(), "{e:?}");
        for name in [&e.actor, &e.subject].into_iter().flatten() {
            assert_eq!(name, "deleted user", "{e:?}");
        }
    }
    let tombstone = about_after.last().unwrap();
    assert_eq!(tombstone.kind, "account_deleted");
    assert_eq!(tombstone.subject_id.as_deref(), Some(user.id.as_str()));
    assert_eq!(tombstone.detail.as_deref(), Some("by its owner"));
    // Nowhere in the whole trail: her name or her address.
    let all: Vec<AuditEvent> = audit_events::table
        .select(AuditEvent::as_select())
        .load(&mut conn)
        .unwrap();
    for e in &all {
        let text = format!("{:?} {:?} {:?}", e.actor, e.subject, e.detail).to_lowercase();
        assert!(!text.contains("ella"), "{e:?}");
    }
}

use diesel::SelectableHelper;

#[test]
fn the_old_session_and_api_keys_stop_working_here_at_once_and_on_another_instance_within_a_second()
{
    let app = spawn_app();
    app.sign_in_as("ella", Role::User);
    let key = create_key(&app, "deploy");
    let other = second_instance(&app);
    let token = app.session_cookie().unwrap().value().to_string();
    // The other instance knows the session (and remembers her name) before the deletion.
    assert_eq!(get_as(&other, "/private", &token).status(), Status::Ok);
    let bearer = api_token_from_key(&other, &key);
    assert_eq!(bearer_status(&other, &bearer), Status::Ok);

    let response = delete_own(&app, "ella");
    assert_eq!(location(&response), "/");
    drop(response);

    assert_eq!(
        get_as(&app.client, "/private", &token).status(),
        Status::SeeOther
    );
    let took = time_until_refused(&other, "/private", &token, StdDuration::from_secs(1));
    assert!(
        took.is_some(),
        "the old cookie still works on the other instance after a second"
    );
    let start = std::time::Instant::now();
    while bearer_status(&other, &bearer) == Status::Ok {
        assert!(
            start.elapsed() < StdDuration::from_secs(1),
            "the key's token still works"
        );
        std::thread::sleep(StdDuration::from_millis(20));
    }
    assert_eq!(exchange(&app.client, &key), Status::Unauthorized);
    assert_eq!(exchange(&other, &key), Status::Unauthorized);
}

#[test]
fn the_name_and_address_can_sign_up_again_and_the_new_account_sees_nothing_old() {
    let app = spawn_app();
    let old = app.sign_in_as("ella", Role::User);
    create_key(&app, "old key");
    let response = delete_own(&app, "ella");
    assert_eq!(location(&response), "/");
    drop(response);

    let response = app.signup("ella", "ella@example.com", PASSWORD);
    assert_eq!(
        response.status(),
        Status::SeeOther,
        "the name and address are free"
    );
    drop(response);
    let new = app.user("ella").expect("a new account");
    assert_ne!(new.id, old.id);
    let page = app
        .client
        .get("/account/api-keys")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(!page.contains("old key"), "{page}");
    let response = app.client.get("/account/data").dispatch();
    assert_eq!(response.status(), Status::Ok);
    let json: serde_json::Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    assert_eq!(json["profile"]["id"], new.id.as_str());
    assert_eq!(json["api_keys"].as_array().unwrap().len(), 0);
    assert_eq!(json["sessions"].as_array().unwrap().len(), 1);
    let old_rows = json["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "api_key_created" || e["kind"] == "account_deleted")
        .count();
    assert_eq!(old_rows, 0, "{}", json["audit_events"]);
    // The audit filter by name finds only the new account's rows.
    assert!(rows_about(&app, &old.id)
        .iter()
        .all(|e| e.actor.as_deref() != Some("ella")));
}

#[test]
fn an_admin_deletes_a_user_from_the_admin_panel() {
    let app = spawn_app();
    let boss = app.sign_in_as("boss", Role::Admin);
    let target = app.create_user("tess", Role::User);
    let other = second_instance(&app);
    let token = login_on(&other, "tess", None);
    let page = app
        .client
        .get(format!("/admin/users/{}", target.id))
        .dispatch()
        .into_string()
        .unwrap();
    assert!(
        page.contains(&format!("/admin/users/{}/delete", target.id)),
        "{page}"
    );
    let action = format!("/admin/users/{}/delete", target.id);

    let response = app.post_form(&action, &[("username", "tes")]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert!(
        app.user("tess").is_some(),
        "not deleted without her name typed"
    );

    let response = app.post_form(&action, &[("username", "tess")]);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/admin");
    drop(response);
    assert!(flash_after(&app, "/admin").contains("The account of tess has been deleted."));
    assert!(app.user("tess").is_none());
    assert!(time_until_refused(&other, "/private", &token, StdDuration::from_secs(1)).is_some());
    let tombstone = audit_events(&app, "account_deleted");
    assert_eq!(tombstone.len(), 1);
    assert_eq!(tombstone[0].actor.as_deref(), Some("boss"));
    assert_eq!(tombstone[0].actor_id.as_deref(), Some(boss.id.as_str()));
    assert_eq!(tombstone[0].subject.as_deref(), Some("deleted user"));
    assert_eq!(tombstone[0].detail.as_deref(), Some("by an administrator"));

    // Not their own account from the panel.
    let response = app.post_form(
        &format!("/admin/users/{}/delete", boss.id),
        &[("username", "boss")],
    );
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert!(app.user("boss").is_some());
}

#[test]
fn the_goodbye_mail_arrives_at_a_real_smtp_server() {
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, |f| f);
    app.sign_in_as("ella", Role::User);
    let response = delete_own(&app, "ella");
    assert_eq!(location(&response), "/");
    drop(response);
    let mail = server.wait_for("ella@example.com", 1, StdDuration::from_secs(15));
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].subject(), "Your latchkey account was deleted");
    assert!(mail[0].text().contains("Hello ella,"), "{}", mail[0].text());
    assert!(
        mail[0].text().contains("This is the last mail"),
        "{}",
        mail[0].text()
    );
}

#[test]
fn the_database_lets_audit_rows_lose_personal_data_and_nothing_else() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app();
    app.sign_in_as("ella", Role::User);
    let mut conn = app.pool().get().unwrap();
    for refused in [
        "UPDATE audit_events SET actor = 'mallory'",
        "UPDATE audit_events SET kind = 'x'",
        "UPDATE audit_events SET ip = '10.0.0.1'",
        "UPDATE audit_events SET subject_id = 'someone-else'",
        "DELETE FROM audit_events",
    ] {
        assert!(conn.batch_execute(refused).is_err(), "{refused}");
    }
    conn.batch_execute(
        "UPDATE audit_events SET actor = 'deleted user', subject = 'deleted user', ip = NULL, \
         user_agent = NULL, detail = NULL",
    )
    .expect("erasing personal data is allowed");
}
