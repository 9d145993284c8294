//! The interactive API page: Swagger UI at `/docs` over `/openapi.json`,
//! and `/` leading there. utoipa-swagger-ui's `vendored` feature puts Swagger
//! UI inside the binary, so the page loads nothing from a CDN: it works
//! offline and behind any proxy.

use std::net::SocketAddr;

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;
use utoipa::openapi::OpenApi;
use utoipa::openapi::server::Server;
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

/// The OpenAPI `servers` entry: where /docs (and generated clients) send
/// requests. `http.public_url` when set; else the bound address, unless it
/// is a wildcard no browser can dial, then `/`: the origin the document was
/// fetched from, right behind any ingress.
pub fn server(http: &HttpSettings, bound: SocketAddr) -> Server {
    let url = match &http.public_url {
        Some(url) => url.clone(),
        None if bound.ip().is_unspecified() => "/".into(),
        None => format!("http://{bound}"),
    };
    Server::new(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_the_public_url_else_the_bound_address_else_the_origin() {
        let mut http = HttpSettings::default();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let wildcard: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(server(&http, local).url, "http://127.0.0.1:8080");
        assert_eq!(server(&http, wildcard).url, "/");
        http.public_url = Some("https://api.example.com".into());
        assert_eq!(server(&http, wildcard).url, "https://api.example.com");
    }
}
