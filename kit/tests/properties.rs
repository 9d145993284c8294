//! Properties of the input parsers every service runs on untrusted input:
//! arbitrary input never panics them, a page token round-trips exactly, and
//! each rule of `kit::validate` / `kit::pagination` gives the same answer as
//! the pattern the OpenAPI document states for it (the document is built from
//! those patterns, so a client that obeys it is never refused).

#![allow(clippy::unwrap_used)]

use kit::pagination::{self, DEFAULT_SIZE, MAX_SIZE, Page, TOKEN_LEN, TOKEN_PATTERN};
use kit::validate::{self, LINE_PATTERN, TEXT_PATTERN, USERNAME_PATTERN};
use std::collections::HashMap;
use std::sync::LazyLock;

use proptest::prelude::*;
use regex::Regex;

/// Strings with what breaks parsers: controls, white space of every kind,
/// multi-byte characters, base64's alphabet.
fn nasty() -> impl Strategy<Value = String> {
    let tricky = prop::sample::select(vec![
        '\0', '\t', '\n', '\r', '\u{b}', '\u{1b}', ' ', '\u{85}', '\u{a0}', '\u{1680}', '\u{2003}',
        '\u{2028}', '\u{202f}', '\u{3000}', '\u{feff}', '\u{200b}', 'é', '央', '🦀', '-', '_', '=',
        '+', '/', 'A', 'z', '0', '9', '.',
    ]);
    prop::collection::vec(prop_oneof![any::<char>(), tricky], 0..40)
        .prop_map(|chars| chars.into_iter().collect())
}

/// Compiled once per pattern: compiling per case would be most of the run.
fn matches(pattern: &'static str, value: &str) -> bool {
    static COMPILED: LazyLock<HashMap<&'static str, Regex>> = LazyLock::new(|| {
        [TOKEN_PATTERN, TEXT_PATTERN, LINE_PATTERN, USERNAME_PATTERN]
            .into_iter()
            .map(|p| (p, Regex::new(p).unwrap()))
            .collect()
    });
    COMPILED[pattern].is_match(value)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_decoded_cursor_always_encodes_back_to_itself(token in nasty()) {
        if let Some(id) = pagination::decode(&token) {
            prop_assert_eq!(pagination::encode(id), token);
        }
    }

    #[test]
    fn an_eleven_character_cursor_never_panics_and_decodes_iff_it_matches_the_pattern(
        token in "[A-Za-z0-9_=+/-]{11}"
    ) {
        prop_assert_eq!(
            pagination::decode(&token).is_some(),
            matches(TOKEN_PATTERN, &token),
            "{}", token
        );
    }

    #[test]
    fn every_id_encodes_to_a_token_of_the_documented_shape(id in 0..=i64::MAX) {
        let token = pagination::encode(id);
        prop_assert_eq!(token.len(), TOKEN_LEN);
        prop_assert!(matches(TOKEN_PATTERN, &token), "{}", token);
        prop_assert_eq!(pagination::decode(&token), Some(id));
    }

    #[test]
    fn the_page_parser_never_panics_and_keeps_its_bounds(size in any::<i32>(), token in nasty()) {
        match Page::request(size, &token) {
            Ok(page) => {
                prop_assert!((1..=MAX_SIZE).contains(&page.size));
                prop_assert!(size == 0 && page.size == DEFAULT_SIZE || page.size as i32 == size);
                prop_assert_eq!(page.before.is_some(), !token.is_empty());
            }
            Err(invalid) => prop_assert!(!invalid.0.is_empty()),
        }
    }

    #[test]
    fn the_limit_parser_accepts_exactly_one_to_the_maximum(limit in any::<Option<u32>>()) {
        let ok = limit.is_none_or(|n| (1..=MAX_SIZE).contains(&n));
        prop_assert_eq!(pagination::limit(limit).is_ok(), ok);
    }

    #[test]
    fn text_agrees_with_its_documented_pattern_and_length(value in nasty(), max in 1usize..30) {
        let documented = matches(TEXT_PATTERN, &value) && value.chars().count() <= max;
        prop_assert_eq!(validate::text("t", &value, max).is_ok(), documented, "{:?}", value);
    }

    #[test]
    fn a_display_name_agrees_with_its_documented_pattern_and_length(value in nasty()) {
        let documented = matches(LINE_PATTERN, &value)
            && value.chars().count() <= validate::DISPLAY_NAME_MAX;
        prop_assert_eq!(
            validate::line("d", &value, validate::DISPLAY_NAME_MAX).is_ok(),
            documented,
            "{:?}", value
        );
    }

    #[test]
    fn a_username_agrees_with_its_documented_pattern(value in nasty()) {
        prop_assert_eq!(
            validate::username(&value).is_ok(),
            matches(USERNAME_PATTERN, &value),
            "{:?}", value
        );
    }

    #[test]
    fn a_password_is_any_eight_to_a_hundred_and_twenty_eight_characters(
        value in prop::collection::vec(any::<char>(), 0..200)
    ) {
        let value: String = value.into_iter().collect();
        let n = value.chars().count();
        prop_assert_eq!(
            validate::password(&value).is_ok(),
            (validate::PASSWORD_MIN..=validate::PASSWORD_MAX).contains(&n)
        );
    }

    #[test]
    fn batches_never_panic_and_come_back_bounded_sorted_and_positive(
        ids in prop::collection::vec(any::<i64>(), 0..600)
    ) {
        if let Ok(batch) = validate::batch("ids", ids.clone()) {
            prop_assert!(ids.len() <= validate::MAX_BATCH);
            prop_assert!(batch.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(batch.iter().all(|id| *id >= validate::ID_MIN));
        }
    }
}

#[test]
fn the_patterns_hold_at_their_edges() {
    let text = |v: &str| matches(TEXT_PATTERN, v);
    assert!(text("a") && text(" a\n") && text("a\tb"));
    assert!(!text("") && !text(" \n\t") && !text("a\u{0}") && !text("\u{3000}"));
    assert!(matches(USERNAME_PATTERN, "Alice.B-1_"));
    assert!(!matches(USERNAME_PATTERN, "alice\n"));
    assert!(matches(TOKEN_PATTERN, &pagination::encode(1)));
    assert!(matches(TOKEN_PATTERN, &pagination::encode(i64::MAX)));
}
