//! Static files compiled into the binary: the browser client, the demo page, and the OpenAPI
//! description. Serving them needs no files on disk and no Node.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

const CLIENT_JS: &str = include_str!("../../../clients/js/tessera-client.js");
const DEMO_HTML: &str = include_str!("../../../clients/js/demo/index.html");
const DEMO_JS: &str = include_str!("../../../clients/js/demo/demo.js");
const DEMO_CSS: &str = include_str!("../../../clients/js/demo/demo.css");
const OPENAPI: &str = include_str!("../openapi.json");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JSON: &str = "application/json";

/// A module of the browser client, at `/lib/<file>`: its entry module `/tessera-client.js`
/// imports `./lib/<file>`, which the browser resolves against the entry's own URL.
macro_rules! client_module {
    ($file:literal) => {
        (
            concat!("/lib/", $file),
            JS,
            include_str!(concat!("../../../clients/js/lib/", $file)),
        )
    };
}

/// Path, content type and body of each file.
const ASSETS: &[(&str, &str, &str)] = &[
    ("/", HTML, DEMO_HTML),
    ("/demo.js", JS, DEMO_JS),
    ("/demo.css", CSS, DEMO_CSS),
    ("/tessera-client.js", JS, CLIENT_JS),
    client_module!("bearer-fetch.js"),
    client_module!("dpop.js"),
    client_module!("errors.js"),
    client_module!("expiry.js"),
    client_module!("json.js"),
    client_module!("page-wake.js"),
    client_module!("renewal.js"),
    client_module!("requests.js"),
    client_module!("tab-channel.js"),
    client_module!("tab-lock.js"),
    client_module!("timeout-signal.js"),
    client_module!("token-state.js"),
    ("/openapi.json", JSON, OPENAPI),
];

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            csp_header(),
        ],
        body,
    )
}

pub fn routes() -> Router<AppState> {
    ASSETS
        .iter()
        .fold(Router::new(), |router, &(path, content_type, body)| {
            router.route(path, get(move || async move { asset(content_type, body) }))
        })
}

/// `Content-Security-Policy` of the demo page: scripts and styles from this origin only.
const DEMO_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn csp_header() -> (HeaderName, HeaderValue) {
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DEMO_CSP),
    )
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// A module left out of `ASSETS` would compile fine and only fail in the browser, as a 404
    /// on the import.
    #[test]
    fn every_client_module_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/js/lib");
        for entry in std::fs::read_dir(&dir).expect("clients/js/lib exists") {
            let name = entry.expect("readable directory").file_name();
            let path = format!("/lib/{}", name.to_string_lossy());
            assert!(
                ASSETS.iter().any(|&(served, _, _)| served == path),
                "{path} is not served"
            );
        }
    }
}
