//! Input checks every service needs, with messages fit for the caller.

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

/// `value` if it is a positive id.
pub fn positive(field: &str, value: i64) -> Result<i64, Invalid> {
    if value > 0 {
        Ok(value)
    } else {
        Err(Invalid(format!("{field} must be positive, got {value}")))
    }
}

/// `value` trimmed, if it is neither empty nor longer than `max` characters
/// and holds no control characters other than newlines and tabs.
pub fn text<'a>(field: &str, value: &'a str, max: usize) -> Result<&'a str, Invalid> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Invalid(format!("{field} must not be empty")));
    }
    if value.chars().count() > max {
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
    Ok(value)
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
    }

    #[test]
    fn text_is_trimmed_and_bounded_in_characters() {
        assert_eq!(text("t", "  hi \n", 5), Ok("hi"));
        assert!(text("t", "   ", 5).is_err());
        assert_eq!(text("t", "ééééé", 5), Ok("ééééé"));
        assert!(text("t", "éééééé", 5).is_err());
    }

    #[test]
    fn line_breaks_pass_but_other_control_characters_do_not() {
        assert!(text("t", "a\nb\tc", 10).is_ok());
        assert!(text("t", "a\u{0}b", 10).is_err());
        assert!(text("t", "a\u{1b}[31m", 10).is_err());
    }
}
