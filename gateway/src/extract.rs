//! Extractors whose rejections are [`ApiError`]s, so malformed input gets the
//! same JSON error shape as everything else.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let message = rejection.body_text();
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(message),
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(message),
        _ => ApiError::BadRequest(message),
    }
}

/// Query-string parameters.
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|r: QueryRejection| ApiError::BadRequest(r.body_text()))
    }
}

/// Path parameters.
pub struct PathParams<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|r: PathRejection| ApiError::BadRequest(r.body_text()))
    }
}

#[cfg(test)]
mod tests {
    //! Arbitrary input never panics an extractor, and every refusal is one
    //! of the statuses the OpenAPI document lists for it.

    use axum::body::Body;
    use axum::http::Request;
    use proptest::prelude::*;

    use super::*;
    use crate::models::{CreateArticle, CreateUser, PageQuery};

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn json_request(content_type: &str, body: Vec<u8>) -> Request<Body> {
        let mut request = Request::post("/x");
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        request.body(Body::from(body)).unwrap()
    }

    /// Bodies near JSON: valid documents with noise, and raw bytes.
    fn bodies() -> impl Strategy<Value = Vec<u8>> {
        let fields = prop::sample::select(vec![
            "username",
            "password",
            "display_name",
            "title",
            "body",
            "admin",
        ]);
        let value = prop_oneof![
            any::<String>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            Just(serde_json::json!([1, "a"])),
        ];
        let document = prop::collection::btree_map(fields, value, 0..5).prop_map(|m| {
            let object: serde_json::Map<String, serde_json::Value> =
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            serde_json::to_vec(&object).unwrap()
        });
        prop_oneof![
            document.clone(),
            (document, any::<prop::sample::Index>(), any::<u8>()).prop_map(|(mut d, at, b)| {
                let i = at.index(d.len());
                d[i] = b;
                d
            }),
            prop::collection::vec(any::<u8>(), 0..64),
        ]
    }

    fn content_types() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "application/json",
            "application/json; charset=utf-8",
            "application/problem+json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
            "application/json; charset=\"x\"; q",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn a_json_body_is_accepted_or_refused_with_a_documented_status(
            content_type in content_types(),
            body in bodies(),
        ) {
            for result in [
                block_on(JsonBody::<CreateUser>::from_request(json_request(content_type, body.clone()), &()))
                    .map(|_| ()),
                block_on(JsonBody::<CreateArticle>::from_request(json_request(content_type, body.clone()), &()))
                    .map(|_| ()),
            ] {
                if let Err(error) = result {
                    let status = error.status().as_u16();
                    prop_assert!([400, 413, 415, 422].contains(&status), "{status} {error}");
                }
            }
        }

        #[test]
        fn a_query_string_is_accepted_or_refused_with_400(query in "[a-z=&%0-9A-F+-]{0,40}") {
            let uri = format!("/x?{query}").parse::<axum::http::Uri>();
            prop_assume!(uri.is_ok());
            let request = Request::get(uri.unwrap()).body(()).unwrap();
            let (mut parts, ()) = request.into_parts();
            if let Err(error) = block_on(QueryParams::<PageQuery>::from_request_parts(&mut parts, &())) {
                prop_assert_eq!(error.status().as_u16(), 400);
            }
        }

        #[test]
        fn a_path_id_is_accepted_or_refused_with_400(segment in "[0-9a-z%+.-]{0,30}") {
            let app = axum::Router::new().route(
                "/x/{id}",
                axum::routing::get(|PathParams(id): PathParams<i64>| async move { id.to_string() }),
            );
            let uri = format!("/x/{segment}").parse::<axum::http::Uri>();
            prop_assume!(uri.is_ok());
            let request = Request::get(uri.unwrap()).body(Body::empty()).unwrap();
            let status = block_on(tower::ServiceExt::oneshot(app, request)).unwrap().status();
            prop_assert!([200, 400, 404].contains(&status.as_u16()), "{}", status);
        }
    }
}
