//! Input rules. Values of these types are valid by construction. The rules
//! themselves are `kit::validate`'s, shared with the gateway's OpenAPI
//! document.

use kit::validate;

use crate::error::Error;

/// 3–32 characters of `[A-Za-z0-9_.-]`; usernames are case-insensitive and
/// stored lowercase, so `Alice` and `alice` are one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        Ok(Self(validate::username(raw)?))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 8–128 characters, anything allowed.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    pub fn parse(raw: String) -> Result<Self, Error> {
        validate::password(&raw)?;
        Ok(Self(raw))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// At most 64 characters without control characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// `raw`, or the username when `raw` is blank.
    pub fn parse(raw: &str, username: &Username) -> Result<Self, Error> {
        let name = validate::line("display_name", raw, validate::DISPLAY_NAME_MAX)?;
        if name.is_empty() {
            return Ok(Self(username.as_str().to_owned()));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased() {
        assert_eq!(Username::parse("Alice_1").unwrap().as_str(), "alice_1");
    }

    #[test]
    fn usernames_outside_the_rules_are_rejected() {
        for bad in [
            "",
            "ab",
            " alice",
            "a b c",
            "émile",
            "x/y",
            &"a".repeat(33),
            "robert'); drop",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_are_counted_in_characters() {
        assert!(Password::parse("ééééééé".into()).is_err());
        assert!(Password::parse("éééééééé".into()).is_ok());
        assert!(Password::parse("x".repeat(129)).is_err());
    }

    #[test]
    fn a_blank_display_name_defaults_to_the_username() {
        let u = Username::parse("bob").unwrap();
        assert_eq!(DisplayName::parse("  ", &u).unwrap().as_str(), "bob");
        assert_eq!(
            DisplayName::parse(" Bob B. ", &u).unwrap().as_str(),
            "Bob B."
        );
        assert!(DisplayName::parse("a\u{0}b", &u).is_err());
        assert!(DisplayName::parse(&"é".repeat(65), &u).is_err());
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let p = Password::parse("hunter22hunter22".into()).unwrap();
        assert!(!format!("{p:?}").contains("hunter"));
    }
}
