//! The API page (/docs), the OpenAPI `servers` entry and the CORS policy.

use std::time::Duration;

use kit::db::Backend;
use reqwest::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    LOCATION,
};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use crate::browser::Browser;
use crate::helpers::{TestStack, spawn_stack, spawn_stack_with};

const ALLOWED: &str = "http://localhost:3000";

#[tokio::test]
async fn the_root_leads_to_the_api_page() {
    let stack = spawn_stack().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = client.get(stack.url("/")).send().await.unwrap();
    assert!(root.status().is_redirection(), "{}", root.status());
    assert_eq!(root.headers()[LOCATION], "/docs/");
    let page = stack.get("/docs/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    stack.stop().await;
}

#[tokio::test]
async fn the_openapi_document_names_the_gateway_as_its_server() {
    let stack = spawn_stack().await;
    let doc: Value = stack.get("/openapi.json").await.json().await.unwrap();
    assert_eq!(doc["servers"][0]["url"], stack.base.as_str(), "{doc}");
    stack.stop().await;
}

#[tokio::test]
async fn the_api_page_lists_every_operation_in_a_browser_without_outside_assets() {
    let stack = spawn_stack().await;
    let doc: Value = stack.get("/openapi.json").await.json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert!(operations >= 8, "{operations}");

    let mut browser = Browser::launch().await;
    browser.open(&stack.url("/")).await;
    // Swagger UI renders from JavaScript once it has fetched the document;
    // until the redirect has landed there may be no document to ask.
    let listed = "document.querySelectorAll('.opblock').length";
    let mut shown = None;
    for _ in 0..300 {
        shown = browser.eval(listed).await.as_u64();
        if shown >= Some(operations as u64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shown, Some(operations as u64), "operations listed");
    let dom = browser.dom().await;
    for path in paths.keys() {
        assert!(dom.contains(&format!("data-path=\"{path}\"")), "{path}");
    }
    // Everything the page loaded came from the gateway itself.
    let loaded = browser
        .eval("JSON.stringify(performance.getEntriesByType('resource').map(e => e.name))")
        .await;
    let loaded: Vec<String> = serde_json::from_str(loaded.as_str().unwrap()).unwrap();
    assert!(!loaded.is_empty());
    for url in &loaded {
        assert!(url.starts_with(&stack.base), "loaded from outside: {url}");
    }
    stack.stop().await;
}

async fn preflight(stack: &TestStack, origin: &str) -> Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, stack.url("/api/v1/articles"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn without_allowed_origins_no_cors_header_is_sent() {
    let stack = spawn_stack().await;
    let answer = preflight(&stack, ALLOWED).await;
    assert!(answer.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    let get = reqwest::Client::new()
        .get(stack.url("/api/v1/articles"))
        .header("origin", ALLOWED)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert!(get.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    stack.stop().await;
}

#[tokio::test]
async fn a_preflight_passes_from_an_allowed_origin_and_not_from_another() {
    let stack = spawn_stack_with(Backend::MySql, |settings| {
        settings.http.cors.allow_origins = vec![ALLOWED.into()];
    })
    .await;

    let allowed = preflight(&stack, ALLOWED).await;
    assert_eq!(allowed.status(), StatusCode::OK);
    let headers = allowed.headers();
    assert_eq!(headers[ACCESS_CONTROL_ALLOW_ORIGIN], ALLOWED);
    assert!(
        headers[ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let allow_headers = headers[ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap();
    assert!(allow_headers.contains("authorization"), "{allow_headers}");
    assert!(allow_headers.contains("content-type"), "{allow_headers}");

    let denied = preflight(&stack, "http://elsewhere.example").await;
    assert!(denied.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    let get = reqwest::Client::new()
        .get(stack.url("/api/v1/articles"))
        .header("origin", ALLOWED)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], ALLOWED);
    stack.stop().await;
}
