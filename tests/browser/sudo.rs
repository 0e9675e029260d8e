//! Sudo mode in the browser: an admin who signed in more than 10 minutes ago (the site's clock
//! moved on) opens the role form, is asked to confirm it's them, enters their app's code, comes
//! back to the form, and the change applies.

use latchkey::models::Role;

use crate::flows::sign_in;
use crate::scene::Scene;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_confirms_it_is_them_after_the_window_and_the_role_change_applies() {
    let Some(scene) = Scene::new("an_admin_confirms_after_the_window") else {
        return;
    };
    let site = scene.site().await;
    site.create_user("chief", Role::Admin).await;
    let tess = site.create_user("tess", Role::User).await;
    let browser = scene.browser("main").await;
    scene
        .run(async {
            sign_in(&browser, &site, "chief", false).await;
            // Eleven minutes later (within the idle timeout: the token is renewed on the way).
            site.clock().advance(time::Duration::minutes(11));
            let user_page = format!("/admin/users/{}", tess.id);
            browser.open(&site.url(&user_page)).await;
            let choose_admin = |b: &crate::chrome::Browser| {
                let b = b.clone();
                async move {
                    b.find("select[name=role] option[value=admin]")
                        .await
                        .click()
                        .await
                        .expect("choose admin");
                    b.click("form[action$='/role'] button[type=submit]").await;
                }
            };
            choose_admin(&browser).await;
            browser.wait_for_path("/confirm").await;
            assert!(browser.page_text().await.contains("Confirm it's you"));
            assert_eq!(site.user("tess").await.unwrap().role, "user", "not yet");

            // The app's code a step later than the one the sign-in used.
            site.clock().advance(time::Duration::seconds(30));
            let code = site.app_code("chief").expect("chief has an app");
            browser.fill("code", &code).await;
            browser
                .click("form[action^='/confirm'] button[type=submit]")
                .await;
            browser.wait_for_path(&user_page).await;

            // Back on the form, with the confirmation's message.
            let flash = browser.text(".flash-success").await;
            assert!(flash.contains("You can go ahead"), "{flash}");
            // The same change again, from the page without a message, so the next one is new.
            browser.open(&site.url(&user_page)).await;
            choose_admin(&browser).await;
            let flash = browser.text(".flash-success").await;
            assert!(flash.contains("tess is now an admin"), "{flash}");
            assert_eq!(site.user("tess").await.unwrap().role, "admin");
        })
        .await;
}
