//! Health, metrics, OpenAPI, the demo page, and JSON answers for unknown routes.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

async fn health_and_readiness_answer(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            app.http.get(app.url(path)).send().await.unwrap().status(),
            StatusCode::OK,
            "{path}"
        );
    }
    app.cleanup().await;
}

async fn metrics_are_prometheus_text(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    app.refresh_with_cookie(&s.refresh).await;
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    assert!(
        metric_value(&text, "tessera_logins_total{outcome=\"ok\"}") >= 1.0,
        "{text}"
    );
    assert!(
        metric_value(&text, "tessera_refreshes_total{outcome=\"ok\"}") >= 1.0,
        "{text}"
    );
    app.cleanup().await;
}

async fn the_openapi_description_covers_every_route(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let doc: Value = app.get_json("/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        doc["paths"]["/admin/users"]["get"]["security"][0]["adminToken"],
        serde_json::json!([]),
        "the admin API has its own security scheme"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["adminToken"]["scheme"],
        "bearer"
    );
    for (path, method) in [
        ("/auth/register", "post"),
        ("/auth/login", "post"),
        ("/auth/refresh", "post"),
        ("/auth/logout", "post"),
        ("/auth/logout-all", "post"),
        ("/auth/me", "get"),
        ("/auth/sessions", "get"),
        ("/auth/sessions/{id}", "delete"),
        ("/.well-known/jwks.json", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/auth/revocations", "get"),
        ("/auth/password", "post"),
        ("/auth/password-reset/request", "post"),
        ("/auth/password-reset", "post"),
        ("/admin/users", "get"),
        ("/admin/users", "post"),
        ("/admin/users/{id}", "get"),
        ("/admin/users/{id}", "delete"),
        ("/admin/users/{id}/disable", "post"),
        ("/admin/users/{id}/enable", "post"),
        ("/admin/users/{id}/sessions", "get"),
        ("/admin/users/{id}/password-reset", "post"),
        ("/admin/sessions/{id}", "delete"),
        ("/oauth/token", "post"),
        ("/oauth/revoke", "post"),
        ("/oauth/introspect", "post"),
        ("/.well-known/oauth-authorization-server", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is described"
        );
    }
    app.cleanup().await;
}

async fn the_demo_page_and_client_are_served_with_a_strict_policy(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let page = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert!(page.text().await.unwrap().contains("<html"));
    let js = app
        .http
        .get(app.url("/tessera-client.js"))
        .send()
        .await
        .unwrap();
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        js.text()
            .await
            .unwrap()
            .contains("export function createClient")
    );
    app.cleanup().await;
}

async fn unknown_routes_get_json_404s(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for path in ["/nope", "/auth/nope", "/auth"] {
        let (status, body) = error_of(app.http.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}"
        );
    }
    let (status, _) = error_of(app.http.post(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    app.cleanup().await;
}

async fn hsts_is_sent_only_when_served_over_https_or_configured(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert!(
        r.headers().get("strict-transport-security").is_none(),
        "plain-HTTP issuer: no HSTS"
    );
    app.cleanup().await;
    let Some(app) =
        spawn_app_with(backend, |a| a.issuer = Some("https://auth.example".into())).await
    else {
        return;
    };
    for path in ["/healthz", "/auth/me", "/nope"] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            r.headers()["strict-transport-security"],
            "max-age=63072000; includeSubDomains",
            "{path}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    }
    app.cleanup().await;
}

on_both_backends!(
    hsts_is_sent_only_when_served_over_https_or_configured,
    health_and_readiness_answer,
    metrics_are_prometheus_text,
    the_openapi_description_covers_every_route,
    the_demo_page_and_client_are_served_with_a_strict_policy,
    unknown_routes_get_json_404s,
);
