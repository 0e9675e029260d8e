//! "Sign out everywhere" and "sign out other sessions" end other browsers' sessions on the server,
//! not just this browser's cookie: another client's next request is refused.

use std::time::Duration;

use latchkey::models::Role;
use rocket::http::Status;
use rocket::local::blocking::Client;

use crate::helpers::*;

const ENDED: &str = "Your session has ended. Please sign in again.";

/// Polls `/private` on `client` with its own cookies until it is refused; panics after a second.
fn assert_refused_within_a_second(client: &Client, who: &str) {
    let start = std::time::Instant::now();
    loop {
        let response = client.get("/private").dispatch();
        if response.status() == Status::SeeOther {
            assert!(
                location(&response).starts_with("/login"),
                "{who}: refused to the sign-in page, got {}",
                location(&response)
            );
            break;
        }
        assert_eq!(response.status(), Status::Ok, "{who}");
        drop(response);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{who}: still signed in a second later"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let page = client.get("/login").dispatch().into_string().unwrap();
    assert!(page.contains(ENDED), "{who}: the sign-in page says why");
}

/// B's session has ended: its token is refused at once by the instance that ended it, and B's
/// own browser (on the other instance) is signed out within a second.
fn assert_ended_on(app: &TestApp, b: &Client, b_token: &str) {
    let response = get_as(&app.client, "/private", b_token);
    assert_eq!(
        response.status(),
        Status::SeeOther,
        "B's token, same instance"
    );
    drop(response);
    assert_refused_within_a_second(b, "B");
}

/// User `name` signed in twice: A on the app's client, B on a second client (its own browser,
/// and another instance on the same database). Returns B and B's token.
fn signed_in_twice(app: &TestApp, name: &str) -> (Client, String) {
    app.sign_in_as(name, Role::User);
    let b = second_instance(app);
    let b_token = login_on(&b, name, None);
    assert_eq!(app.client.get("/private").dispatch().status(), Status::Ok);
    assert_eq!(b.get("/private").dispatch().status(), Status::Ok);
    (b, b_token)
}

#[test]
fn logout_everywhere_ends_another_clients_session() {
    let app = spawn_app();
    let (b, b_token) = signed_in_twice(&app, "everywhere");

    let response = app.post_form("/account/logout-everywhere", &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);

    assert_ended_on(&app, &b, &b_token);
    assert_eq!(
        app.client.get("/private").dispatch().status(),
        Status::SeeOther,
        "A is signed out too"
    );
}

#[test]
fn revoke_others_ends_another_clients_session_and_keeps_this_one() {
    let app = spawn_app();
    let (b, b_token) = signed_in_twice(&app, "others");
    let a_token = app.session_cookie().unwrap().value().to_string();

    let response = app.post_form("/account/sessions/revoke-others", &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);

    assert_eq!(
        app.client.get("/private").dispatch().status(),
        Status::Ok,
        "A stays signed in"
    );
    assert_ended_on(&app, &b, &b_token);
    let response = get_as(&app.client, "/private", &a_token);
    assert_eq!(response.status(), Status::Ok, "A still signed in");
    drop(response);
    assert_eq!(
        get_as(&b, "/private", &a_token).status(),
        Status::Ok,
        "A's token still works on the other instance"
    );
}
