//! The web console at `/console`: a dependency-free page (plain HTML, CSS and JavaScript
//! modules under `src/http/console/`, no build step) compiled into the binary, so any working
//! directory serves it. The assets are public and hold no data: the page reads everything
//! through the same `/v1` and `/admin/v1` routes as any client, with the API key and the admin
//! token the user enters (kept in the browser's `sessionStorage`), so the console adds no way
//! around the API's auth or limits.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorKind};

/// Where the console lives.
pub const ROOT: &str = "/console";

/// Every asset: its name under `/console/`, content type, and bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("index.html", HTML, include_bytes!("console/index.html")),
    ("console.css", CSS, include_bytes!("console/console.css")),
    ("app.js", JS, include_bytes!("console/app.js")),
    ("api.js", JS, include_bytes!("console/api.js")),
    ("diff.js", JS, include_bytes!("console/diff.js")),
    ("chart.js", JS, include_bytes!("console/chart.js")),
    ("playground.js", JS, include_bytes!("console/playground.js")),
    ("jobs.js", JS, include_bytes!("console/jobs.js")),
    ("forms.js", JS, include_bytes!("console/forms.js")),
    ("models.js", JS, include_bytes!("console/models.js")),
];

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Scripts and styles from this origin only; connections only to this server.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The console's routes, to be merged into the application router.
pub fn router() -> axum::Router<super::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route(ROOT, get(index))
        .route("/console/", get(index))
        .route("/console/{asset}", get(asset))
}

/// `GET /console`: the page.
async fn index() -> Response {
    serve("index.html")
}

/// `GET /console/{asset}`: a script or the style sheet.
async fn asset(Path(name): Path<String>) -> Response {
    serve(&name)
}

fn serve(name: &str) -> Response {
    let Some((_, mime, bytes)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return ApiError::new(ErrorKind::NotFound, "No such console asset").into_response();
    };
    let mut response = (StatusCode::OK, *bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The assets change only with the binary; revalidating each load keeps an upgrade visible.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_embedded() {
        let page = std::str::from_utf8(ASSETS[0].2).unwrap();
        for (name, _, bytes) in ASSETS {
            assert!(!bytes.is_empty(), "{name} is empty");
        }
        for part in page.split("/console/").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect();
            assert!(
                ASSETS.iter().any(|(n, _, _)| *n == name),
                "index.html names /console/{name}, which is not embedded"
            );
        }
    }

    #[test]
    fn unknown_assets_are_404() {
        assert_eq!(serve("../Cargo.toml").status(), StatusCode::NOT_FOUND);
        assert_eq!(serve("app.js").status(), StatusCode::OK);
    }
}
