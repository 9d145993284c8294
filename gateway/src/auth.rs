//! Session tokens: HS256 JWTs signed with the configured secret.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::settings::AuthSettings;

mod hs256;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id.
    sub: String,
    name: String,
    iss: String,
    iat: u64,
    /// Not before: the issue time, so a token minted with a clock ahead of
    /// ours is refused until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    exp: u64,
}

/// Issues and checks session tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    issuer: String,
}

impl Tokens {
    pub fn new(settings: &AuthSettings) -> Self {
        hs256::install();
        let secret = settings.jwt_secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        validation.validate_nbf = true;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl: settings.token_ttl,
            issuer: settings.issuer.clone(),
        }
    }

    /// A token for `user`, and when it expires.
    pub fn issue(&self, user_id: i64, username: &str) -> Result<(String, SystemTime), ApiError> {
        let now = SystemTime::now();
        let expires = now + self.ttl;
        let claims = Claims {
            sub: user_id.to_string(),
            name: username.to_owned(),
            iss: self.issuer.clone(),
            iat: unix(now),
            nbf: Some(unix(now)),
            exp: unix(expires),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("cannot sign a token: {e}")))?;
        Ok((token, expires))
    }

    /// The user a token was issued to, if it is genuine and current.
    pub fn verify(&self, token: &str) -> Result<AuthUser, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| ApiError::Unauthenticated(format!("invalid token: {e}")))?;
        let id = data
            .claims
            .sub
            .parse()
            .map_err(|_| ApiError::Unauthenticated("invalid token subject".into()))?;
        Ok(AuthUser {
            id,
            username: data.claims.name,
        })
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The caller, from a valid `Authorization: Bearer <token>` header. Handlers
/// that take it answer 401 to anonymous callers.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub username: String,
}

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Arc<Tokens>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthenticated("missing bearer token".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthenticated("expected 'Authorization: Bearer <token>'".into())
            })?;
        Arc::<Tokens>::from_ref(state).verify(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn tokens(secret: &str, ttl: Duration) -> Tokens {
        Tokens::new(&AuthSettings {
            jwt_secret: SecretString::from(secret),
            token_ttl: ttl,
            issuer: "newsroom".into(),
        })
    }

    #[test]
    fn an_issued_token_verifies_to_its_user() {
        let t = tokens(&"k".repeat(32), Duration::from_secs(60));
        let (token, _) = t.issue(42, "alice").unwrap();
        let user = t.verify(&token).unwrap();
        assert_eq!((user.id, user.username.as_str()), (42, "alice"));
    }

    #[test]
    fn only_hs256_is_signed_or_accepted() {
        let t = tokens(&"k".repeat(32), Duration::from_secs(60));
        let (token, _) = t.issue(7, "bob").unwrap();
        let claims = jsonwebtoken::dangerous::insecure_decode::<Claims>(&token)
            .unwrap()
            .claims;
        let hs512 = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &t.encoding);
        assert!(hs512.is_err());
        // The same claims, retagged: the header says HS512, the check refuses.
        let (_, rest) = token.split_once('.').unwrap();
        let retagged = format!("eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.{rest}");
        assert!(t.verify(&retagged).is_err());
    }

    #[test]
    fn a_token_signed_with_another_secret_is_rejected() {
        let (token, _) = tokens(&"a".repeat(32), Duration::from_secs(60))
            .issue(1, "x")
            .unwrap();
        assert!(
            tokens(&"b".repeat(32), Duration::from_secs(60))
                .verify(&token)
                .is_err()
        );
    }

    #[test]
    fn an_expired_token_is_rejected() {
        let t = tokens(&"k".repeat(32), Duration::ZERO);
        let claims = Claims {
            sub: "1".into(),
            name: "x".into(),
            iss: "newsroom".into(),
            iat: 0,
            nbf: None,
            exp: 1,
        };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &t.encoding).unwrap();
        assert!(t.verify(&token).is_err());
    }

    #[test]
    fn garbage_is_rejected() {
        let t = tokens(&"k".repeat(32), Duration::from_secs(60));
        for token in ["", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."] {
            assert!(t.verify(token).is_err(), "{token}");
        }
    }
}
