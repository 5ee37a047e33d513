//! Static files compiled into the binary: the browser client, the demo page, and the OpenAPI
//! description. Serving them needs no files on disk and no Node.

use axum::Router;
use axum::http::{HeaderValue, header};
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

/// Path, content type and body of each file.
const ASSETS: &[(&str, &str, &str)] = &[
    ("/", HTML, DEMO_HTML),
    ("/demo.js", JS, DEMO_JS),
    ("/demo.css", CSS, DEMO_CSS),
    ("/tessera-client.js", JS, CLIENT_JS),
    ("/openapi.json", JSON, OPENAPI),
];

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            crate::csp_header(),
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
