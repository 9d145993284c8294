use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Where the config files live unless `APP_CONFIG_DIR` says otherwise.
pub const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config");

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// What every binary shares: admin port, discovery, channels, the
    /// breakers, bulkheads and timeouts of the calls to the services, which
    /// backends readiness requires, telemetry, shutdown and runtime.
    /// `platform.grpc` is unused here.
    pub platform: kit::PlatformSettings,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub services: ServiceNames,
    /// Retries of idempotent reads (the only place that retries).
    pub retry: kit::resilience::retry::RetrySettings,
    /// The micro-cache of anonymous hot reads (`crate::cache`).
    pub cache: crate::cache::MicroCacheSettings,
    /// Rate limits of sign-up, login (per client IP) and writes (per user).
    pub limits: crate::limits::LimitSettings,
    /// The credential of the gateway's admin surfaces (`/admin/breakers`,
    /// `/admin/dashboard`): `Authorization: Bearer <token>`, or HTTP Basic
    /// with the token as password (a browser's prompt). Without one they
    /// answer 403.
    pub admin_token: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    /// Largest request body accepted; bigger ones get 413. At least
    /// [`crate::models::LARGEST_VALID_BODY`], so every body the OpenAPI
    /// document calls valid fits.
    pub body_limit_bytes: usize,
    /// Whole-request budget; past it the caller gets 504.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Base URL clients reach the API at, published as the OpenAPI `servers`
    /// entry (what /docs sends its requests to). Unset: the bound address,
    /// or `/` (the document's own origin) when bound to every interface.
    pub public_url: Option<String>,
    pub cors: CorsSettings,
    /// Proxies (CIDRs) whose `X-Forwarded-For` names the client; from any
    /// other peer the header is ignored and the socket's address is the
    /// client (rate limits are per client IP).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The in-flight limit of this instance: past it, 503 at once.
    pub shed: kit::server::shed::ShedSettings,
    /// Header and body read timeouts (slow clients).
    pub reads: kit::server::ReadTimeouts,
}

/// Which browser pages on other origins may call the API. No origins, the
/// default, sends no CORS headers: browsers then let only pages served by
/// the gateway itself (/docs) call it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSettings {
    /// Exact origins (`https://app.example.com`), or `["*"]` for any.
    pub allow_origins: Vec<String>,
    /// Request headers a cross-origin call may send.
    pub allow_headers: Vec<String>,
    /// How long a browser may reuse a preflight answer.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

impl Default for CorsSettings {
    fn default() -> Self {
        Self {
            allow_origins: Vec::new(),
            allow_headers: vec!["authorization".into(), "content-type".into()],
            max_age: Duration::from_secs(600),
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            body_limit_bytes: 512 * 1024,
            request_timeout: Duration::from_secs(10),
            public_url: None,
            cors: CorsSettings::default(),
            trusted_proxies: Vec::new(),
            shed: kit::server::shed::ShedSettings::default(),
            reads: kit::server::ReadTimeouts::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// HMAC key for session tokens (HS256); at least 32 bytes. Production
    /// takes it from a Secret (`APP_GATEWAY__AUTH__JWT_SECRET`), never from a file.
    pub jwt_secret: SecretString,
    /// How long a session token is valid.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    pub issuer: String,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: SecretString::from(""),
            token_ttl: Duration::from_secs(24 * 3600),
            issuer: "newsroom".into(),
        }
    }
}

/// The discovery names of the services the gateway calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceNames {
    pub user: String,
    pub content: String,
    pub comment: String,
    // new-service: service-names
}

impl Default for ServiceNames {
    fn default() -> Self {
        Self {
            user: "user".into(),
            content: "content".into(),
            comment: "comment".into(),
            // new-service: service-defaults
        }
    }
}

impl ServiceNames {
    pub fn all(&self) -> Vec<&str> {
        vec![
            &self.user,
            &self.content,
            &self.comment,
            // new-service: service-list
        ]
    }
}

/// A setting that parsed but cannot work.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "auth.jwt_secret must be at least 32 bytes (set APP_GATEWAY__AUTH__JWT_SECRET to a long random value)"
    )]
    WeakSecret,
    #[error(
        "http.body_limit_bytes must be at least {min} (the largest article the API accepts), got {got}",
        min = crate::models::LARGEST_VALID_BODY
    )]
    BodyLimitTooSmall { got: usize },
    #[error("http.request_timeout must be positive")]
    NoTime,
    #[error(transparent)]
    Resilience(#[from] kit::resilience::InvalidPolicy),
    #[error(transparent)]
    Shed(#[from] kit::server::shed::InvalidShed),
    #[error(transparent)]
    Readiness(#[from] kit::readiness::UnknownBackend),
    #[error(transparent)]
    Messages(#[from] kit::messages::InvalidLimits),
    #[error(transparent)]
    Cors(#[from] crate::cors::InvalidCors),
    #[error(transparent)]
    Cache(#[from] crate::cache::InvalidCache),
    #[error(transparent)]
    Limits(#[from] crate::limits::InvalidLimits),
    #[error("http.reads.header and http.reads.body must be positive")]
    NoReadTime,
}

impl Settings {
    /// Rejects settings that would only fail later, before any port is bound.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.auth.jwt_secret.expose_secret().len() < 32 {
            return Err(SettingsError::WeakSecret);
        }
        if self.http.body_limit_bytes < crate::models::LARGEST_VALID_BODY {
            return Err(SettingsError::BodyLimitTooSmall {
                got: self.http.body_limit_bytes,
            });
        }
        if self.http.request_timeout.is_zero() {
            return Err(SettingsError::NoTime);
        }
        self.platform.resilience.validate()?;
        self.http.shed.validate()?;
        self.platform
            .channel
            .messages
            .validate("platform.channel.messages")?;
        self.platform.readiness.validate(&self.services.all())?;
        crate::cors::layer(&self.http.cors)?;
        self.cache.validate(crate::routes::CACHEABLE)?;
        self.limits.validate()?;
        if self.http.reads.header.is_zero() || self.http.reads.body.is_zero() {
            return Err(SettingsError::NoReadTime);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_local_config_is_valid() {
        let settings: Settings = kit::config::load_files(CONFIG_DIR, "local").unwrap();
        settings.validate().unwrap();
    }

    #[test]
    fn a_body_limit_below_the_largest_valid_article_is_refused() {
        let mut settings: Settings = kit::config::load_files(CONFIG_DIR, "local").unwrap();
        settings.http.body_limit_bytes = crate::models::LARGEST_VALID_BODY - 1;
        assert!(matches!(
            settings.validate(),
            Err(SettingsError::BodyLimitTooSmall { .. })
        ));
        settings.http.body_limit_bytes = crate::models::LARGEST_VALID_BODY;
        settings.validate().unwrap();
    }

    #[test]
    fn production_without_a_secret_is_rejected() {
        let settings: Settings = kit::config::load_files(CONFIG_DIR, "production").unwrap();
        assert!(matches!(
            settings.validate(),
            Err(SettingsError::WeakSecret)
        ));
    }

    fn with_adaptive_bulkhead(adaptive: serde_json::Value) -> Settings {
        let mut settings: Settings = kit::config::load_files(CONFIG_DIR, "local").unwrap();
        settings.platform.resilience = serde_json::from_value(serde_json::json!({
            "overrides": {"comment.v1.CommentService": {"bulkhead": {"adaptive": adaptive}}}
        }))
        .unwrap();
        settings
    }

    #[test]
    fn adaptive_bulkhead_settings_that_cannot_work_are_refused_naming_the_key() {
        for (adaptive, key) in [
            (
                serde_json::json!({"min": 50, "max": 10}),
                "bulkhead.adaptive.min",
            ),
            (
                serde_json::json!({"backoff": 1.5}),
                "bulkhead.adaptive.backoff",
            ),
            (
                serde_json::json!({"backoff": 0.0}),
                "bulkhead.adaptive.backoff",
            ),
            (serde_json::json!({"max": 0}), "bulkhead.adaptive.max"),
            (
                serde_json::json!({"latency_target": "0s"}),
                "bulkhead.adaptive.latency_target",
            ),
        ] {
            let refused = with_adaptive_bulkhead(adaptive.clone()).validate();
            let Err(SettingsError::Resilience(error)) = refused else {
                panic!("{adaptive} was accepted");
            };
            let message = error.to_string();
            assert!(
                message.contains("comment.v1.CommentService") && message.contains(key),
                "{adaptive}: {message}"
            );
        }
        with_adaptive_bulkhead(serde_json::json!({"min": 2, "max": 40, "initial": 10}))
            .validate()
            .unwrap();
    }

    #[test]
    fn the_readme_states_the_configured_number_of_read_retries() {
        let settings: Settings = kit::config::load_files(CONFIG_DIR, "local").unwrap();
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let said = ["never retried", "retried once more", "retried twice more"]
            .get(settings.retry.max_retries as usize)
            .unwrap_or_else(|| panic!("max_retries {}", settings.retry.max_retries));
        assert!(
            readme.contains(&format!("Reads are {said}")),
            "README does not say \"Reads are {said}\" (max_retries: {})",
            settings.retry.max_retries
        );
        assert_eq!(
            settings.retry.max_retries,
            kit::resilience::retry::RetrySettings::default().max_retries,
            "the checked-in config and the code default agree"
        );
    }
}
