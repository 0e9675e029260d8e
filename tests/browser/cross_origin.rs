//! A form on another origin (a second local port) posting to the site with the victim's cookie.

use latchkey::models::Role;

use crate::flows::sign_in;
use crate::other_origin;
use crate::scene::Scene;

/// A page that posts "make mallory an admin" to the site, optionally with a CSRF token.
fn attack_page(target: &str, csrf_token: Option<&str>) -> String {
    let token = csrf_token
        .map(|t| format!(r#"<input type="hidden" name="csrf_token" value="{t}">"#))
        .unwrap_or_default();
    format!(
        r#"<!DOCTYPE html><html><head><title>Win a prize</title></head><body>
<form method="post" action="{target}">
  <input type="hidden" name="role" value="admin">{token}
  <button id="claim" type="submit">Claim your prize</button>
</form></body></html>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_from_another_origin_is_rejected() {
    let Some(scene) = Scene::new("a_form_posted_from_another_origin_is_rejected") else {
        return;
    };
    let site = scene.site().await;
    site.create_user("chief", Role::Admin).await;
    let mallory = site.create_user("mallory", Role::User).await;
    let trudy = site.create_user("trudy", Role::User).await;
    let browser = scene.browser("main").await;
    let target = site.url(&format!("/admin/users/{}/role", mallory.id));
    scene
        .run(async {
            sign_in(&browser, &site, "chief", false).await;
            // The same kind of change, made from the site's own page, works.
            browser
                .open(&site.url(&format!("/admin/users/{}", trudy.id)))
                .await;
            browser
                .find("select[name=role] option[value=admin]")
                .await
                .click()
                .await
                .unwrap();
            browser
                .click("form[action$='/role'] button[type=submit]")
                .await;
            let flash = browser.text(".flash-success").await;
            assert!(flash.contains("trudy is now an admin"), "{flash}");
            assert_eq!(site.user("trudy").await.unwrap().role, Role::Admin.as_str());

            // The token the admin's own pages carry, as if it had leaked: the origin check
            // alone must still refuse the post.
            browser.open(&site.url("/admin")).await;
            let leaked = browser
                .find("form[action='/logout'] input[name=csrf_token]")
                .await
                .attr("value")
                .await
                .unwrap()
                .expect("a csrf token");

            for (what, token) in [
                ("without a token", None),
                ("with a leaked token", Some(leaked)),
            ] {
                let origin = other_origin::serve(attack_page(&target, token.as_deref())).await;
                assert_ne!(origin, site.origin);
                browser.open(&format!("{origin}/prize")).await;
                browser.click("#claim").await;
                browser
                    .wait_for_path(&format!("/admin/users/{}/role", mallory.id))
                    .await;
                assert_eq!(browser.text(".error-status").await, "403", "{what}");
                let message = browser.text(".error-card").await;
                assert!(
                    message.contains("form"),
                    "the page says what happened ({what}): {message:?}"
                );
                let now = site.user("mallory").await.unwrap();
                assert_eq!(
                    now.role,
                    Role::User.as_str(),
                    "the role is unchanged {what}"
                );
                // Still signed in: the refusal names the signed-in admin.
                assert_eq!(browser.text(".nav-whoami strong").await, "chief");
            }
        })
        .await;
}
