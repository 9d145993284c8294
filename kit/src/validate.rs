//! Input checks every service needs, with messages fit for the caller, and
//! the rules themselves: the services enforce these constants and the
//! gateway's OpenAPI document is built from the same ones, so the document
//! cannot promise what a service refuses (or the reverse).
//!
//! Each rule is stated twice on purpose: as Rust (what runs) and as an
//! ECMA-262 pattern (what the OpenAPI document says, for generated clients
//! and schemathesis). The property tests in `kit/tests/properties.rs` hold
//! the two to the same answer for arbitrary strings. The patterns spell
//! characters as `\uXXXX` ranges, never `\s` or `\d`, whose meaning differs
//! between regex engines.

/// A request field broke a rule; the message says which and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Handlers can `?` a failed check straight into `INVALID_ARGUMENT`.
impl From<Invalid> for tonic::Status {
    fn from(invalid: Invalid) -> Self {
        tonic::Status::invalid_argument(invalid.0)
    }
}

/// The smallest id: ids are positive int64s (the largest is `i64::MAX`).
pub const ID_MIN: i64 = 1;

/// Usernames: 3 to 32 of `A-Z a-z 0-9 _ . -`, case-insensitive (stored
/// lowercase). No trimming: a space is refused like any other character.
pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const USERNAME_PATTERN: &str = "^[A-Za-z0-9_.-]{3,32}$";

/// Passwords: 8 to 128 characters, any.
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;

/// Display names: at most 64 characters, no control characters; blank means
/// "the username" (see [`line()`]).
pub const DISPLAY_NAME_MAX: usize = 64;

/// Article titles, article bodies and comments (see [`text`]).
pub const TITLE_MAX: usize = 200;
pub const ARTICLE_BODY_MAX: usize = 100_000;
pub const COMMENT_BODY_MAX: usize = 5_000;

/// Most ids one batch call (authors of a page, comment counts) may carry.
pub const MAX_BATCH: usize = 500;

/// [`text`] as a pattern: any characters but controls (tabs and line breaks
/// allowed), and at least one that is not white space.
pub const TEXT_PATTERN: &str = concat!(
    "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*",
    "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]",
    "[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
);

/// [`line()`] as a pattern: no control characters at all.
pub const LINE_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";

/// `value` if it is a positive id.
pub fn positive(field: &str, value: i64) -> Result<i64, Invalid> {
    if value >= ID_MIN {
        Ok(value)
    } else {
        Err(Invalid(format!("{field} must be positive, got {value}")))
    }
}

/// Every id of a batch call: at most [`MAX_BATCH`] of them (counted before
/// duplicates go, so the work is bounded before any is looked at), each
/// positive; sorted and without duplicates.
pub fn batch(field: &str, ids: Vec<i64>) -> Result<Vec<i64>, Invalid> {
    if ids.len() > MAX_BATCH {
        return Err(Invalid(format!(
            "{field} may hold at most {MAX_BATCH} ids, got {}",
            ids.len()
        )));
    }
    let mut ids = ids;
    for id in &ids {
        positive(field, *id)?;
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// `value` trimmed, if it has at most `max` characters (counted before
/// trimming, so the rule is one a schema can state), at least one that is
/// not white space, and no control characters other than newlines and tabs.
pub fn text<'a>(field: &str, value: &'a str, max: usize) -> Result<&'a str, Invalid> {
    // Counting stops past `max`: a huge value costs no more than a long one.
    if value.chars().nth(max).is_some() {
        return Err(Invalid(format!("{field} must be at most {max} characters")));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    let value = value.trim();
    if value.is_empty() {
        return Err(Invalid(format!("{field} must not be empty")));
    }
    Ok(value)
}

/// `value` trimmed, possibly empty, if it has at most `max` characters
/// (counted before trimming) and no control characters at all.
pub fn line<'a>(field: &str, value: &'a str, max: usize) -> Result<&'a str, Invalid> {
    if value.chars().nth(max).is_some() {
        return Err(Invalid(format!("{field} must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.trim())
}

/// `value` lowercased, if it is a username ([`USERNAME_PATTERN`]).
pub fn username(value: &str) -> Result<String, Invalid> {
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&value.len()) {
        return Err(Invalid(format!(
            "username must be {USERNAME_MIN} to {USERNAME_MAX} characters"
        )));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(Invalid(
            "username may only contain letters, digits, '_', '.' and '-'".into(),
        ));
    }
    Ok(value.to_ascii_lowercase())
}

/// Whether `value` has a password's length.
pub fn password(value: &str) -> Result<(), Invalid> {
    // A byte count above 4 × max cannot be max characters: no need to count.
    let ok = value.len() <= PASSWORD_MAX * 4
        && (PASSWORD_MIN..=PASSWORD_MAX).contains(&value.chars().count());
    if ok {
        Ok(())
    } else {
        Err(Invalid(format!(
            "password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_positive() {
        assert_eq!(positive("id", 3), Ok(3));
        assert!(
            positive("id", 0)
                .unwrap_err()
                .0
                .contains("id must be positive")
        );
        assert!(positive("id", -5).is_err());
        assert!(positive("id", i64::MIN).is_err());
    }

    #[test]
    fn batches_are_bounded_positive_and_deduplicated() {
        assert_eq!(batch("ids", vec![3, 1, 3]), Ok(vec![1, 3]));
        assert!(batch("ids", vec![1, 0]).is_err());
        assert!(batch("ids", vec![1; MAX_BATCH + 1]).is_err());
        assert_eq!(batch("ids", vec![1; MAX_BATCH]), Ok(vec![1]));
    }

    #[test]
    fn text_is_trimmed_and_bounded_in_characters_before_trimming() {
        assert_eq!(text("t", "  hi \n", 6), Ok("hi"));
        assert!(text("t", "  hi \n", 5).is_err());
        assert!(text("t", "   ", 5).is_err());
        assert!(text("t", "", 5).is_err());
        assert_eq!(text("t", "ééééé", 5), Ok("ééééé"));
        assert!(text("t", "éééééé", 5).is_err());
    }

    #[test]
    fn line_breaks_pass_but_other_control_characters_do_not() {
        assert!(text("t", "a\nb\tc", 10).is_ok());
        assert!(text("t", "a\u{0}b", 10).is_err());
        assert!(text("t", "a\u{1b}[31m", 10).is_err());
        assert!(line("t", "a\nb", 10).is_err());
        assert_eq!(line("t", "  ", 10), Ok(""));
    }

    #[test]
    fn usernames_are_lowercased_and_never_trimmed() {
        assert_eq!(username("Alice_1").unwrap(), "alice_1");
        for bad in ["", "ab", " alice", "alice\n", "a b c", "émile", "x/y"] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
        assert!(username(&"a".repeat(33)).is_err());
    }

    #[test]
    fn passwords_are_counted_in_characters() {
        assert!(password("ééééééé").is_err());
        assert!(password("éééééééé").is_ok());
        assert!(password(&"x".repeat(129)).is_err());
        assert!(password(&"€".repeat(128)).is_ok());
    }
}
