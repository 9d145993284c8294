//! Cursor pagination helpers shared by every list RPC.
//!
//! A page token names the last item of the previous page (by its
//! monotonically increasing id), so inserts while a client pages through a
//! newest-first list neither repeat nor skip items — unlike offsets. Tokens
//! are opaque to clients, but their shape is exact ([`TOKEN_PATTERN`]): the
//! id as 8 big-endian bytes in unpadded base64url, one spelling per id, so
//! the OpenAPI document can say precisely which tokens a list accepts, and a
//! decoded token always encodes back to itself.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::validate::Invalid;

/// The one page rule of every list, HTTP and gRPC: a page holds this many
/// items unless the caller asks otherwise…
pub const DEFAULT_SIZE: u32 = 20;
/// …and never more than this (what keeps the largest page decodable within
/// the message limits).
pub const MAX_SIZE: u32 = 100;

/// Characters of every page token: 8 bytes of base64 without padding.
pub const TOKEN_LEN: usize = 11;

/// Every token [`Page::request`] accepts, as an ECMA-262 pattern (for the
/// OpenAPI document): 11 base64url characters; the first carries the sign
/// bit (ids are never negative), the last only 4 bits (canonical base64: the
/// 2 bits past the 64th are zero).
pub const TOKEN_PATTERN: &str = "^[A-Za-f][A-Za-z0-9_-]{9}[AEIMQUYcgkosw048]$";

/// The page size of a public list call's `?limit=`: 1 to [`MAX_SIZE`],
/// [`DEFAULT_SIZE`] when absent.
pub fn limit(limit: Option<u32>) -> Result<u32, Invalid> {
    match limit {
        None => Ok(DEFAULT_SIZE),
        Some(n @ 1..=MAX_SIZE) => Ok(n),
        Some(n) => Err(Invalid(format!(
            "limit must be between 1 and {MAX_SIZE}, got {n}"
        ))),
    }
}

/// A page request that passed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Items to return.
    pub size: u32,
    /// Return items with ids strictly below this; `None` for the first page.
    pub before: Option<i64>,
}

impl Page {
    /// Validates a list RPC's `page_size` (0 means [`DEFAULT_SIZE`], at most
    /// [`MAX_SIZE`]) and `page_token`.
    pub fn request(size: i32, token: &str) -> Result<Self, Invalid> {
        Self::parse(size, token, DEFAULT_SIZE, MAX_SIZE)
    }

    /// Validates `page_size` (0 means `default`) and `page_token`.
    pub fn parse(size: i32, token: &str, default: u32, max: u32) -> Result<Self, Invalid> {
        let size = match u32::try_from(size) {
            Ok(0) => default,
            Ok(n) if n <= max => n,
            _ => {
                return Err(Invalid(format!(
                    "page_size must be between 0 and {max}, got {size}"
                )));
            }
        };
        let before =
            if token.is_empty() {
                None
            } else {
                Some(decode(token).ok_or_else(|| {
                    Invalid("page_token is not a token this service issued".into())
                })?)
            };
        Ok(Self { size, before })
    }

    /// Rows to fetch: one more than the page, to learn whether another page
    /// follows without a second query.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.size) + 1
    }

    /// Cuts `rows` (fetched with [`Page::fetch_limit`], newest first) down to
    /// the page and returns the token of the next page, empty on the last.
    pub fn finish<T>(&self, rows: &mut Vec<T>, id: impl Fn(&T) -> i64) -> String {
        if rows.len() > self.size as usize {
            rows.truncate(self.size as usize);
            rows.last().map(|last| encode(id(last))).unwrap_or_default()
        } else {
            String::new()
        }
    }
}

/// The token naming `id` (ids are positive; a negative one would give a
/// token [`decode`] refuses).
pub fn encode(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(id.to_be_bytes())
}

/// The id a token names, if it is one [`encode`] makes. The length is checked
/// first, so a huge forged token costs nothing to refuse. Id 0 is a valid
/// token (an empty page), which keeps [`TOKEN_PATTERN`] a plain pattern.
pub fn decode(token: &str) -> Option<i64> {
    if token.len() != TOKEN_LEN {
        return None;
    }
    // The engine refuses padding and non-zero trailing bits: one spelling
    // per id.
    let bytes: [u8; 8] = URL_SAFE_NO_PAD.decode(token).ok()?.try_into().ok()?;
    let id = i64::from_be_bytes(bytes);
    (id >= 0).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_the_default_size() {
        assert_eq!(Page::parse(0, "", 20, 100).unwrap().size, 20);
    }

    #[test]
    fn sizes_out_of_range_are_rejected() {
        assert!(Page::parse(-1, "", 20, 100).is_err());
        assert!(Page::parse(101, "", 20, 100).is_err());
        assert_eq!(Page::parse(100, "", 20, 100).unwrap().size, 100);
    }

    #[test]
    fn a_token_round_trips_to_the_id_it_names() {
        let page = Page::parse(2, "", 20, 100).unwrap();
        let mut rows = vec![9, 8, 7];
        let token = page.finish(&mut rows, |r| *r);
        assert_eq!(rows, [9, 8]);
        assert_eq!(Page::parse(2, &token, 20, 100).unwrap().before, Some(8));
    }

    #[test]
    fn the_last_page_has_no_token() {
        let page = Page::parse(3, "", 20, 100).unwrap();
        let mut rows = vec![3, 2, 1];
        assert_eq!(page.finish(&mut rows, |r| *r), "");
    }

    #[test]
    fn forged_tokens_are_rejected() {
        // The second is `encode(-1)`; the third ends in non-zero trailing
        // bits; the last is a token of the old `v1:` text format.
        let forged = [
            "garbage",
            "__________8",
            "AAAAAAAAAAB",
            "!!!!!!!!!!!",
            "djE6MTIz",
        ];
        for token in forged {
            assert!(Page::parse(1, token, 20, 100).is_err(), "{token}");
        }
    }
}
