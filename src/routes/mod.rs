//! The site's routes, one module per area, each exporting `routes()`.

pub mod account;
pub mod admin;
pub mod api;
pub mod api_keys;
pub mod auth;
pub mod fields;
pub mod health;
pub mod pages;
pub mod two_factor;

pub use fields::Fields;

/// Every route of the site.
pub fn all() -> Vec<rocket::Route> {
    let mut routes = Vec::new();
    routes.extend(pages::routes());
    routes.extend(auth::routes());
    routes.extend(account::routes());
    routes.extend(admin::routes());
    routes.extend(health::routes());
    routes.extend(api::routes());
    routes.extend(api_keys::routes());
    routes.extend(two_factor::routes());
    routes
}
