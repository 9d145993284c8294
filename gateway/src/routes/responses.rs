//! The error answers every operation shares, added to the document from what
//! each operation is (a body, parameters, a bearer token, a write) rather
//! than listed by hand in each `#[utoipa::path]`, where one is easily
//! forgotten. An operation's own entry for a status (401 of the login, say)
//! keeps its description.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// When a status can happen: to which operations it is added.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum When {
    /// Every operation.
    Always,
    /// Operations with a JSON request body.
    Body,
    /// Operations with path or query parameters, or a body.
    Input,
    /// Operations that need a bearer token.
    Bearer,
    /// Sign-up, login and writes (every POST): the rate-limited routes.
    Post,
}

/// Status, when it applies, description.
pub(crate) const SHARED: [(u16, When, &str); 9] = [
    (
        400,
        When::Input,
        "A parameter or field breaks a rule of this document, or the JSON is malformed",
    ),
    (401, When::Bearer, "No valid bearer token"),
    (
        413,
        When::Body,
        "The body is larger than the gateway's limit (`http.body_limit_bytes`)",
    ),
    (415, When::Body, "The body is not `application/json`"),
    (
        422,
        When::Body,
        "Well-formed JSON of the wrong shape: a field missing, unknown or of the wrong type",
    ),
    (
        429,
        When::Post,
        "Rate limited (per client IP for sign-up and login, per user for writes); `Retry-After` says when to come back",
    ),
    (500, When::Always, "An internal error (the body is opaque)"),
    (
        503,
        When::Always,
        "Overloaded, or a service it needs is unavailable; `Retry-After` says when to come back",
    ),
    (
        504,
        When::Always,
        "The request took longer than the gateway's budget (`http.request_timeout`)",
    ),
];

/// Adds [`SHARED`] to every operation of `openapi`.
pub(crate) fn document(openapi: &mut OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            (HttpMethod::Get, item.get.as_mut()),
            (HttpMethod::Post, item.post.as_mut()),
            (HttpMethod::Put, item.put.as_mut()),
            (HttpMethod::Delete, item.delete.as_mut()),
            (HttpMethod::Patch, item.patch.as_mut()),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                add_shared(&method, operation);
            }
        }
    }
}

fn applies(when: When, method: &HttpMethod, operation: &Operation) -> bool {
    let body = operation.request_body.is_some();
    match when {
        When::Always => true,
        When::Body => body,
        When::Input => body || operation.parameters.as_ref().is_some_and(|p| !p.is_empty()),
        When::Bearer => operation.security.as_ref().is_some_and(|s| !s.is_empty()),
        When::Post => *method == HttpMethod::Post,
    }
}

fn add_shared(method: &HttpMethod, operation: &mut Operation) {
    for (status, when, description) in SHARED {
        if !applies(when, method, operation) {
            continue;
        }
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(status, description));
    }
}

fn error_response(status: u16, description: &str) -> RefOr<Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    let string = || ObjectBuilder::new().schema_type(Type::String);
    match status {
        401 => {
            response = response.header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Some(string()))
                    .description(Some("`Bearer`"))
                    .build(),
            );
        }
        429 | 503 => {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    ))
                    .description(Some("Seconds to wait before trying again"))
                    .build(),
            );
        }
        _ => {}
    }
    response.build().into()
}

#[cfg(test)]
mod tests {
    use kit::{pagination, validate};
    use serde_json::{Value, json};

    fn document() -> Value {
        let cache = crate::cache::Store::new(
            &crate::cache::MicroCacheSettings::default(),
            &kit::metrics::Registry::new(),
        );
        let (_, openapi) = crate::routes::api(crate::models::LARGEST_VALID_BODY, &cache);
        serde_json::to_value(&openapi).unwrap()
    }

    #[test]
    fn every_operation_documents_every_status_it_can_answer_with_the_error_body() {
        let doc = document();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                operations += 1;
                let responses = operation["responses"].as_object().unwrap();
                let has = |status: u16| responses.contains_key(&status.to_string());
                let at = format!("{method} {path}");
                for status in [500, 503, 504] {
                    assert!(has(status), "{at}: {status}");
                }
                let body = operation.get("requestBody").is_some();
                if body {
                    for status in [400, 413, 415, 422] {
                        assert!(has(status), "{at}: {status}");
                    }
                    let content = &operation["requestBody"]["content"];
                    assert!(content.get("application/json").is_some(), "{at}");
                    assert_eq!(operation["requestBody"]["required"], true, "{at}");
                }
                if operation.get("parameters").is_some() {
                    assert!(has(400), "{at}: 400");
                }
                assert_eq!(has(429), method == "post", "{at}: 429 on posts only");
                if method == "post" {
                    assert!(responses["429"]["headers"].get("Retry-After").is_some());
                }
                assert!(responses["503"]["headers"].get("Retry-After").is_some());
                let secured = operation.get("security").is_some();
                if secured {
                    assert_eq!(operation["security"], json!([{"bearer": []}]), "{at}");
                    assert!(has(401), "{at}: 401");
                }
                for (status, response) in responses {
                    if !status.starts_with('2') {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{at}: {status}"
                        );
                    }
                }
            }
        }
        // The template's eight, and more once `make new-service` adds some.
        assert!(operations >= 8, "{operations}");
        // Writes need a token; the sign-up and the login do not.
        let post = |path: &str| doc["paths"][path]["post"].get("security").is_some();
        assert!(post("/api/v1/articles") && post("/api/v1/articles/{id}/comments"));
        assert!(!post("/api/v1/users") && !post("/api/v1/sessions"));
        assert!(doc["paths"]["/api/v1/users"]["post"]["responses"]["409"].is_object());
    }

    #[test]
    fn the_documented_rules_are_the_ones_the_services_enforce() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let field = |schema: &str, name: &str| schemas[schema]["properties"][name].clone();
        let rule = |value: &Value| {
            (
                value["minLength"].as_u64(),
                value["maxLength"].as_u64(),
                value["pattern"].as_str().map(str::to_owned),
            )
        };
        let username = (
            Some(validate::USERNAME_MIN as u64),
            Some(validate::USERNAME_MAX as u64),
            Some(validate::USERNAME_PATTERN.to_owned()),
        );
        let password = (
            Some(validate::PASSWORD_MIN as u64),
            Some(validate::PASSWORD_MAX as u64),
            None,
        );
        let text = |max: usize| {
            (
                Some(1),
                Some(max as u64),
                Some(validate::TEXT_PATTERN.into()),
            )
        };
        for schema in ["CreateUser", "CreateSession"] {
            assert_eq!(rule(&field(schema, "username")), username, "{schema}");
            assert_eq!(rule(&field(schema, "password")), password, "{schema}");
            assert_eq!(schemas[schema]["additionalProperties"], false, "{schema}");
        }
        assert_eq!(
            rule(&field("CreateUser", "display_name")),
            (
                None,
                Some(validate::DISPLAY_NAME_MAX as u64),
                Some(validate::LINE_PATTERN.into())
            )
        );
        assert_eq!(
            schemas["CreateUser"]["required"],
            json!(["username", "password"])
        );
        assert_eq!(
            rule(&field("CreateArticle", "title")),
            text(validate::TITLE_MAX)
        );
        assert_eq!(
            rule(&field("CreateArticle", "body")),
            text(validate::ARTICLE_BODY_MAX)
        );
        assert_eq!(
            rule(&field("CreateComment", "body")),
            text(validate::COMMENT_BODY_MAX)
        );

        let parameters = doc["paths"]["/api/v1/articles/{id}/comments"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .clone();
        let parameter = |name: &str| {
            parameters
                .iter()
                .find(|p| p["name"] == name)
                .unwrap()
                .clone()
        };
        let id = parameter("id");
        assert_eq!(id["in"], "path");
        assert_eq!(id["required"], true);
        assert_eq!(
            id["schema"],
            json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": i64::MAX})
        );
        let limit = parameter("limit");
        assert_eq!(limit["required"], false);
        assert_eq!(limit["schema"]["minimum"], 1);
        assert_eq!(limit["schema"]["maximum"], pagination::MAX_SIZE);
        let cursor = parameter("cursor");
        assert_eq!(cursor["required"], false);
        assert_eq!(cursor["schema"]["pattern"], pagination::TOKEN_PATTERN);
        assert_eq!(cursor["schema"]["maxLength"], pagination::TOKEN_LEN);
    }
}
