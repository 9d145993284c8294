//! The HTTP side of a copy: its key, its tag, `Cache-Control`, the
//! conditional request and the stale marker.

use std::borrow::Cow;
use std::fmt::Write as _;

use axum::http::HeaderValue;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::RoutePolicy;

/// `path` plus those query parameters that choose the answer, sorted by
/// name (stable, so repeated parameters keep their order) and re-encoded.
pub(super) fn key(path: &str, query: Option<&str>, params: &[String]) -> String {
    let mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(name, _)| params.iter().any(|p| p == name))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        return path.to_owned();
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut key = String::with_capacity(path.len() + 32);
    key.push_str(path);
    key.push('?');
    let mut encoded = url::form_urlencoded::Serializer::for_suffix(key, path.len() + 1);
    for (name, value) in &pairs {
        encoded.append_pair(name, value);
    }
    encoded.finish()
}

/// A strong tag of `body`: the same bytes give the same tag on every
/// instance, so a CDN in front of several gateways revalidates cheaply.
pub(super) fn etag(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in &digest[..16] {
        let _ = write!(tag, "{byte:02x}");
    }
    tag.push('"');
    // Hex digits and quotes are valid header characters.
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks
/// for this header).
pub(super) fn matches(if_none_match: Option<&HeaderValue>, etag: &HeaderValue) -> bool {
    let Some(Ok(list)) = if_none_match.map(|v| v.to_str()) else {
        return false;
    };
    let ours = etag.as_bytes();
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == ours)
}

/// `Cache-Control` of a route's answers, in whole seconds.
pub(super) fn cache_control(policy: &RoutePolicy) -> HeaderValue {
    let ttl = policy.ttl.as_secs();
    let value = format!(
        "public, max-age={ttl}, s-maxage={ttl}, stale-while-revalidate={}, stale-if-error={}",
        policy.stale_while_revalidate.as_secs(),
        policy.stale_if_error.as_secs()
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("no-store"))
}

/// `body` (a JSON object) with `"stale"` added to its `degraded` list, as
/// every degraded answer of the API says what it lacks. A body that is not
/// an object is served unchanged.
pub(super) fn mark_stale(body: &Bytes) -> Bytes {
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(body) else {
        return body.clone();
    };
    let degraded = object
        .entry("degraded")
        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
    if let serde_json::Value::Array(parts) = degraded
        && !parts.iter().any(|p| p == "stale")
    {
        parts.push("stale".into());
    }
    serde_json::to_vec(&object).map_or_else(|_| body.clone(), Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Vec<String> {
        vec!["limit".into(), "cursor".into()]
    }

    #[test]
    fn keys_ignore_order_and_unknown_parameters() {
        let a = key("/api/v1/articles", Some("limit=20&cursor=abc"), &params());
        let b = key(
            "/api/v1/articles",
            Some("utm_source=x&cursor=abc&limit=20"),
            &params(),
        );
        assert_eq!(a, b);
        assert_eq!(a, "/api/v1/articles?cursor=abc&limit=20");
        assert_eq!(key("/p", Some("x=1"), &params()), "/p");
        assert_eq!(key("/p", None, &params()), "/p");
        // Percent-encoding is normalised too.
        assert_eq!(
            key("/p", Some("limit=%32%30"), &params()),
            key("/p", Some("limit=20"), &params())
        );
        assert_ne!(
            key("/p", Some("limit=20"), &params()),
            key("/p", Some("limit=21"), &params())
        );
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_any() {
        let tag = etag(b"{}");
        let quoted = tag.to_str().unwrap().to_owned();
        for header in [
            quoted.clone(),
            format!("W/{quoted}"),
            format!("\"x\", {quoted}"),
            "*".into(),
        ] {
            assert!(
                matches(Some(&HeaderValue::from_str(&header).unwrap()), &tag),
                "{header}"
            );
        }
        assert!(!matches(Some(&HeaderValue::from_static("\"x\"")), &tag));
        assert!(!matches(None, &tag));
        assert_ne!(etag(b"{}"), etag(b"[]"));
    }

    #[test]
    fn a_stale_body_says_so_once_and_keeps_what_it_had() {
        let body = Bytes::from_static(br#"{"items":[1],"degraded":["comments"]}"#);
        let stale: serde_json::Value = serde_json::from_slice(&mark_stale(&body)).unwrap();
        assert_eq!(stale["degraded"], serde_json::json!(["comments", "stale"]));
        assert_eq!(stale["items"], serde_json::json!([1]));
        let twice: serde_json::Value =
            serde_json::from_slice(&mark_stale(&mark_stale(&body))).unwrap();
        assert_eq!(twice["degraded"], serde_json::json!(["comments", "stale"]));
        let plain = Bytes::from_static(br#"{"id":1}"#);
        let stale: serde_json::Value = serde_json::from_slice(&mark_stale(&plain)).unwrap();
        assert_eq!(stale["degraded"], serde_json::json!(["stale"]));
    }

    #[test]
    fn cache_control_says_the_policy_in_seconds() {
        let policy = RoutePolicy::default();
        assert_eq!(
            cache_control(&policy),
            "public, max-age=1, s-maxage=1, stale-while-revalidate=10, stale-if-error=300"
        );
    }
}
