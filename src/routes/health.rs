//! Liveness and readiness for load balancers and orchestrators.

use rocket::http::Status;
use rocket::serde::json::{json, Json, Value};

use super::services::Services;

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![healthz, readyz]
}

/// The process is up; touches nothing else.
#[rocket::get("/healthz")]
fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers; 503 when it does not.
#[rocket::get("/readyz")]
async fn readyz(site: Services<'_>) -> (Status, Json<Value>) {
    match site.db.run(crate::db::ping).await {
        Ok(()) => (
            Status::Ok,
            Json(json!({ "status": "ready", "database": "ok" })),
        ),
        Err(e) => {
            log::warn!("readiness check failed: {e}");
            (
                Status::ServiceUnavailable,
                Json(json!({ "status": "unavailable", "database": "unreachable" })),
            )
        }
    }
}
