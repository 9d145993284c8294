//! The excerpt a list shows instead of an article's body.

/// Longest summary, in characters (Unicode scalar values), "…" included.
pub const SUMMARY_CHARS: usize = 280;

/// `body` itself when it fits in [`SUMMARY_CHARS`], else its first
/// characters and "…". Cuts on a character boundary, never inside one, so a
/// summary of CJK or emoji text is valid UTF-8 of at most 4 × 280 bytes.
pub fn summary(body: &str) -> String {
    match body.char_indices().nth(SUMMARY_CHARS) {
        None => body.to_owned(),
        Some(_) => {
            // Room for the ellipsis; `nth` above proved there are more chars.
            let cut = body
                .char_indices()
                .nth(SUMMARY_CHARS - 1)
                .map_or(body.len(), |(at, _)| at);
            let mut out = body[..cut].trim_end().to_owned();
            out.push('…');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_body_is_its_own_summary() {
        assert_eq!(summary("Rates hold."), "Rates hold.");
        let exactly = "x".repeat(SUMMARY_CHARS);
        assert_eq!(summary(&exactly), exactly);
    }

    #[test]
    fn a_long_cjk_body_is_cut_on_a_character_boundary_with_an_ellipsis() {
        let body = "央行维持利率不变".repeat(1000);
        let s = summary(&body);
        assert_eq!(s.chars().count(), SUMMARY_CHARS);
        assert!(s.ends_with('…'));
        assert!(body.starts_with(s.trim_end_matches('…')));
    }

    #[test]
    fn any_body_gives_a_bounded_summary() {
        for body in ["a\u{1F600}".repeat(500), " ".repeat(1000), "é".repeat(281)] {
            let s = summary(&body);
            assert!(s.chars().count() <= SUMMARY_CHARS, "{s}");
            assert!(s.len() <= 4 * SUMMARY_CHARS);
        }
    }
}
