//! The OpenAPI schemas of every constrained input, built from the constants
//! the services enforce (`kit::validate`, `kit::pagination`): a rule changed
//! there changes the document with it. utoipa's `#[schema(max_length = …)]`
//! takes only literals, hence functions (`schema_with`) instead.

use kit::{pagination, validate};
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, Type};

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

pub fn username() -> Object {
    string("3–32 characters of letters, digits, `_`, `.`, `-`; case-insensitive.")
        .min_length(Some(validate::USERNAME_MIN))
        .max_length(Some(validate::USERNAME_MAX))
        .pattern(Some(validate::USERNAME_PATTERN))
        .examples(["alice"])
        .build()
}

pub fn password() -> Object {
    string("8–128 characters, any.")
        .min_length(Some(validate::PASSWORD_MIN))
        .max_length(Some(validate::PASSWORD_MAX))
        .examples(["correct horse battery"])
        .build()
}

pub fn display_name() -> Object {
    string("At most 64 characters, no control characters; trimmed. Blank or absent: the username.")
        .max_length(Some(validate::DISPLAY_NAME_MAX))
        .pattern(Some(validate::LINE_PATTERN))
        .examples(["Alice Liddell"])
        .build()
}

/// Text of an article or comment: `max` characters, counted before the
/// surrounding white space is trimmed off.
fn text(description: &str, max: usize) -> ObjectBuilder {
    string(description)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(validate::TEXT_PATTERN))
}

pub fn title() -> Object {
    text(
        "1–200 characters, not all white space, no control characters but tabs and line breaks; trimmed.",
        validate::TITLE_MAX,
    )
    .examples(["Central bank holds rates"])
    .build()
}

pub fn article_body() -> Object {
    text(
        "1–100000 characters, not all white space, no control characters but tabs and line breaks; trimmed.",
        validate::ARTICLE_BODY_MAX,
    )
    .examples(["The central bank held its main rate at 4 % on Thursday."])
    .build()
}

pub fn comment_body() -> Object {
    text(
        "1–5000 characters, not all white space, no control characters but tabs and line breaks; trimmed.",
        validate::COMMENT_BODY_MAX,
    )
    .examples(["Expected, given last month's figures."])
    .build()
}

/// The `{id}` of a path (hand-built: utoipa's `schema_with` on a parameter
/// drops its `required` and description).
pub fn path_id(description: &str) -> Parameter {
    ParameterBuilder::new()
        .name("id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(id()))
        .build()
}

/// `?limit=&cursor=` of the lists.
pub fn page_params() -> Vec<Parameter> {
    let query = |name: &str, description: &str, schema: Object| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(description))
            .schema(Some(schema))
            .build()
    };
    vec![
        query("limit", "Items per page: 1–100, default 20.", limit()),
        query(
            "cursor",
            "`next_cursor` of the previous page; absent for the first page.",
            cursor(),
        ),
    ]
}

/// A path id: a positive int64.
fn id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(validate::ID_MIN))
        .maximum(Some(i64::MAX))
        .build()
}

/// `?limit=`.
fn limit() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .minimum(Some(1))
        .maximum(Some(pagination::MAX_SIZE))
        .default(Some(pagination::DEFAULT_SIZE.into()))
        .build()
}

/// `?cursor=`: exactly what a list issues as `next_cursor`.
fn cursor() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(pagination::TOKEN_LEN))
        .max_length(Some(pagination::TOKEN_LEN))
        .pattern(Some(pagination::TOKEN_PATTERN))
        .build()
}
