//! `405 Method Not Allowed` with an `Allow` header, derived from the mounted routes: Rocket 0.5
//! answers 404 when a path exists but not for the request's method (and 400 for a method it does
//! not know), and the catchers ask here which methods the path does have.

use rocket::http::{Method, Status};
use rocket::request::Request;
use rocket::Route;

/// For an error `status` about to be answered: the methods the mounted routes answer at the
/// request's path, in a fixed order (`HEAD` wherever `GET` is, as Rocket answers it), when the
/// answer should be a 405 instead. That is a 404 where the path exists with other methods, and
/// the 400 Rocket gives a method it does not know at all (`QUERY`, `FOO`): it salvages such a
/// request as an unrouted `GET` and sends it straight to the catchers. Otherwise `None`, and the
/// status stands (a truly unknown path stays a 404).
pub fn methods_if_not_allowed(status: Status, req: &Request<'_>) -> Option<Vec<Method>> {
    let known_method = match status.code {
        404 => true,
        400 if unrecognized_method(req) => false,
        _ => return None,
    };
    let methods = methods_at(req.rocket().routes(), req);
    if methods.is_empty() || (known_method && methods.contains(&req.method())) {
        None
    } else {
        Some(methods)
    }
}

/// Whether Rocket salvaged this request because it did not know its method: only then does a
/// `GET` reach a catcher without having been routed.
fn unrecognized_method(req: &Request<'_>) -> bool {
    req.method() == Method::Get && req.route().is_none()
}

/// The value of an `Allow` header for `methods`.
pub fn allow_header(methods: &[Method]) -> String {
    methods
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every method of `routes` whose path matches the request's path.
fn methods_at<'a>(routes: impl Iterator<Item = &'a Route>, req: &Request<'_>) -> Vec<Method> {
    let path: Vec<&str> = req.uri().path().segments().collect();
    let mut found: Vec<Method> = routes
        .filter(|r| path_matches(r.uri.path(), &path))
        .map(|r| r.method)
        .collect();
    if found.contains(&Method::Get) {
        found.push(Method::Head);
    }
    const ORDER: [Method; 9] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
        Method::Trace,
        Method::Connect,
    ];
    ORDER.into_iter().filter(|m| found.contains(m)).collect()
}

/// Whether a route path (`/api/users/<id>`, `/static/<path..>`) matches the request's decoded
/// path segments, by Rocket's rules: a static segment matches itself, `<x>` any one segment and
/// a trailing `<x..>` the rest (even nothing).
fn path_matches(route: &str, request: &[&str]) -> bool {
    let route: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();
    let trailing = route
        .last()
        .is_some_and(|s| s.starts_with('<') && s.ends_with("..>"));
    if trailing {
        if request.len() + 1 < route.len() {
            return false;
        }
    } else if route.len() != request.len() {
        return false;
    }
    for (r, q) in route.iter().zip(request) {
        let dynamic = r.starts_with('<') && r.ends_with('>');
        if dynamic && r.ends_with("..>") {
            return true;
        }
        if !dynamic && r != q {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::path_matches;

    #[test]
    fn paths_match_by_rocket_rules() {
        assert!(path_matches("/api/me", &["api", "me"]));
        assert!(!path_matches("/api/me", &["api", "me", "x"]));
        assert!(!path_matches("/api/me", &["api"]));
        assert!(path_matches("/admin/users/<id>", &["admin", "users", "7"]));
        assert!(!path_matches(
            "/admin/users/<id>",
            &["admin", "groups", "7"]
        ));
        assert!(path_matches("/static/<path..>", &["static"]));
        assert!(path_matches(
            "/static/<path..>",
            &["static", "css", "a.css"]
        ));
        assert!(path_matches("/", &[]));
        assert!(!path_matches("/", &["x"]));
    }
}
