//! The Sentry client: errors logged at ERROR level and panics become reports,
//! tagged with the service and (per request, see [`super::report`]) the
//! OpenTelemetry trace id, and scrubbed of anything that looks like a secret.

use std::borrow::Cow;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use sentry::protocol::{Context, Event, Value};

use super::TelemetryError;

/// Field names whose values never leave the process.
const SENSITIVE: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "api_key",
    "apikey",
    "dsn",
];

const REDACTED: &str = "[redacted]";

pub(super) fn init(
    service: &str,
    dsn: &SecretString,
    environment: Option<&str>,
) -> Result<sentry::ClientInitGuard, TelemetryError> {
    let dsn: sentry::types::Dsn = dsn
        .expose_secret()
        .parse()
        .map_err(|e: sentry::types::ParseDsnError| TelemetryError::SentryDsn(e.to_string()))?;
    if dsn.scheme() == sentry::types::Scheme::Https && !cfg!(feature = "sentry-tls") {
        return Err(TelemetryError::SentryTls);
    }
    let environment = environment
        .map(str::to_owned)
        .or_else(|| std::env::var("APP_ENVIRONMENT").ok())
        .unwrap_or_else(|| "local".into());
    let mut options = sentry::ClientOptions::default();
    options.dsn = Some(dsn);
    options.release = Some(Cow::Owned(format!(
        "{service}@{}",
        env!("CARGO_PKG_VERSION")
    )));
    options.environment = Some(Cow::Owned(environment));
    // No IP addresses, cookies or request bodies, ever.
    options.send_default_pii = false;
    options.before_send = Some(Arc::new(|event| Some(scrub(event))));
    let guard = sentry::init(options);
    let service = service.to_owned();
    sentry::configure_scope(|scope| scope.set_tag("service", service));
    Ok(guard)
}

/// Removes what could carry credentials: the request (headers, body),
/// the user, and any field named like a secret, wherever it sits.
fn scrub(mut event: Event<'static>) -> Event<'static> {
    event.request = None;
    event.user = None;
    for (key, value) in &mut event.tags {
        if is_sensitive(key) {
            *value = REDACTED.into();
        }
    }
    for (key, value) in &mut event.extra {
        scrub_value(key, value);
    }
    for context in event.contexts.values_mut() {
        if let Context::Other(map) = context {
            for (key, value) in map {
                scrub_value(key, value);
            }
        }
    }
    for breadcrumb in &mut event.breadcrumbs.values {
        for (key, value) in &mut breadcrumb.data {
            scrub_value(key, value);
        }
    }
    event
}

fn scrub_value(key: &str, value: &mut Value) {
    if is_sensitive(key) {
        *value = Value::String(REDACTED.into());
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                scrub_value(key, value);
            }
        }
        Value::Array(items) => {
            for item in items {
                scrub_value("", item);
            }
        }
        _ => {}
    }
}

fn is_sensitive(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SENSITIVE.iter().any(|s| key.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "sentry-tls"))]
    #[test]
    fn an_https_dsn_is_refused_by_a_build_without_tls() {
        let dsn = SecretString::from("https://key@o1.ingest.sentry.io/42");
        let error = init("svc", &dsn, None).err().expect("refused");
        assert!(matches!(error, TelemetryError::SentryTls), "{error}");
        assert!(error.to_string().contains("kit/sentry-tls"));
    }

    #[test]
    fn fields_named_like_secrets_are_redacted_at_any_depth() {
        let mut event = Event::default();
        event
            .tags
            .insert("Authorization".into(), "Bearer abc".into());
        event.extra.insert(
            "form".into(),
            serde_json::json!({"username": "ann", "password": "hunter2"}),
        );
        let event = scrub(event);
        assert_eq!(event.tags["Authorization"], REDACTED);
        assert_eq!(event.extra["form"]["password"], REDACTED);
        assert_eq!(event.extra["form"]["username"], "ann");
    }
}
