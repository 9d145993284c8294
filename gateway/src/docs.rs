//! The interactive API page: Swagger UI at `/docs` over `/openapi.json`,
//! and `/` leading there. utoipa-swagger-ui's `vendored` feature puts Swagger
//! UI inside the binary, so the page loads nothing from a CDN: it works
//! offline and behind any proxy.

use std::net::SocketAddr;

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;
use utoipa::openapi::OpenApi;
use utoipa::openapi::server::{Server, ServerBuilder};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::settings::HttpSettings;

pub const PAGE: &str = "/docs/";
pub const DOCUMENT: &str = "/openapi.json";

/// `/docs`, `/openapi.json` and the `/` redirect.
pub fn router<S: Clone + Send + Sync + 'static>(openapi: OpenApi) -> Router<S> {
    let config = Config::new([DOCUMENT])
        // The default shows a badge fetched from validator.swagger.io.
        .validator_url("none")
        .try_it_out_enabled(true)
        .persist_authorization(true)
        .display_request_duration(true);
    Router::from(
        SwaggerUi::new("/docs")
            .url(DOCUMENT, openapi)
            .config(config),
    )
    .route("/", get(|| async { Redirect::temporary(PAGE) }))
}

/// The OpenAPI `servers`: where /docs (and generated clients) send requests.
/// First `http.public_url` when set; else the bound address, unless it is a
/// wildcard no browser can dial, then `/`: the origin the document was
/// fetched from, right behind any ingress. `/` is also offered second, for a
/// page opened under another name (`localhost` for `127.0.0.1`), from which
/// the first would be a cross-origin call that CORS (off) refuses.
pub fn servers(http: &HttpSettings, bound: SocketAddr) -> Vec<Server> {
    let first = match &http.public_url {
        Some(url) => url.clone(),
        None if bound.ip().is_unspecified() => "/".into(),
        None => format!("http://{bound}"),
    };
    let mut servers = vec![Server::new(first.as_str())];
    if first != "/" {
        servers.push(
            ServerBuilder::new()
                .url("/")
                .description(Some("the origin this page was loaded from"))
                .build(),
        );
    }
    servers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_server_is_the_public_url_else_the_bound_address_else_the_origin() {
        let urls = |http: &HttpSettings, bound: &str| -> Vec<String> {
            servers(http, bound.parse().unwrap())
                .into_iter()
                .map(|s| s.url)
                .collect()
        };
        let mut http = HttpSettings::default();
        assert_eq!(
            urls(&http, "127.0.0.1:8080"),
            ["http://127.0.0.1:8080", "/"]
        );
        assert_eq!(urls(&http, "0.0.0.0:8080"), ["/"]);
        http.public_url = Some("https://api.example.com".into());
        assert_eq!(
            urls(&http, "0.0.0.0:8080"),
            ["https://api.example.com", "/"]
        );
    }
}
