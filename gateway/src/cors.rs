//! The API's CORS policy (tower-http's `CorsLayer`), from `http.cors`.
//!
//! Off unless origins are listed. Preflights are answered by the layer, before
//! routing, metrics and timeouts: they are the browser asking, not API calls.
//! Methods are the API's own (GET, POST); `Retry-After` is exposed so a page
//! can honour a 503's back-off.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::settings::CorsSettings;

#[derive(Debug, thiserror::Error)]
pub enum InvalidCors {
    #[error(
        "http.cors.allow_origins: {0:?} is not an origin (scheme://host[:port], or \"*\" alone)"
    )]
    Origin(String),
    #[error("http.cors.allow_headers: {0:?} is not a header name")]
    Header(String),
}

/// The layer the settings describe; `None` when no origin is allowed.
pub fn layer(settings: &CorsSettings) -> Result<Option<CorsLayer>, InvalidCors> {
    if settings.allow_origins.is_empty() {
        return Ok(None);
    }
    let any = settings.allow_origins.iter().any(|o| o == "*");
    let origins = if any {
        if settings.allow_origins.len() > 1 {
            return Err(InvalidCors::Origin("*".into()));
        }
        AllowOrigin::any()
    } else {
        let list = settings
            .allow_origins
            .iter()
            .map(|origin| {
                let valid = origin.contains("://") && !origin.ends_with('/');
                valid
                    .then(|| HeaderValue::from_str(origin).ok())
                    .flatten()
                    .ok_or_else(|| InvalidCors::Origin(origin.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(list)
    };
    let headers = settings
        .allow_headers
        .iter()
        .map(|h| HeaderName::try_from(h.as_str()).map_err(|_| InvalidCors::Header(h.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers(headers)
            .expose_headers([RETRY_AFTER])
            .max_age(settings.max_age),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_origins(origins: &[&str]) -> CorsSettings {
        CorsSettings {
            allow_origins: origins.iter().map(|o| o.to_string()).collect(),
            ..CorsSettings::default()
        }
    }

    #[test]
    fn no_origins_means_no_cors_layer() {
        assert!(layer(&CorsSettings::default()).unwrap().is_none());
    }

    #[test]
    fn a_listed_origin_or_a_lone_star_makes_a_layer() {
        assert!(
            layer(&with_origins(&["http://localhost:3000"]))
                .unwrap()
                .is_some()
        );
        assert!(layer(&with_origins(&["*"])).unwrap().is_some());
    }

    #[test]
    fn a_path_a_bare_host_or_a_star_among_origins_is_rejected() {
        for bad in [
            &["http://localhost:3000/"][..],
            &["localhost:3000"],
            &["*", "http://a.example"],
        ] {
            assert!(layer(&with_origins(bad)).is_err(), "{bad:?}");
        }
    }
}
