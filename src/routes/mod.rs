//! The site's routes, one module per area, each exporting `routes()`. Handlers are thin: guards
//! bring the user, the services ([`services::Services`]) and the page's base
//! ([`crate::view::PageContext`]); typed forms bring validated fields; the work is done by the
//! services and models; handlers turn the answers into pages, redirects and JSON.

mod account;
mod admin;
mod api;
mod api_keys;
mod confirm;
mod deletion;
pub(crate) mod email;
mod export;
mod health;
pub(crate) mod invitations;
mod jwks;
mod pages;
mod passkey_signin;
mod passkeys;
mod password_reset;
mod services;
mod signin;
mod signup;
mod two_factor;
mod welcome;

/// Every route of the site.
pub fn all() -> Vec<rocket::Route> {
    let mut routes = Vec::new();
    routes.extend(pages::routes());
    routes.extend(signup::routes());
    routes.extend(invitations::routes());
    routes.extend(signin::routes());
    routes.extend(passkey_signin::routes());
    routes.extend(passkeys::routes());
    routes.extend(password_reset::routes());
    routes.extend(account::routes());
    routes.extend(confirm::routes());
    routes.extend(deletion::routes());
    routes.extend(export::routes());
    routes.extend(email::routes());
    routes.extend(admin::routes());
    routes.extend(health::routes());
    routes.extend(jwks::routes());
    routes.extend(api::routes());
    routes.extend(api_keys::routes());
    routes.extend(two_factor::routes());
    routes
}
