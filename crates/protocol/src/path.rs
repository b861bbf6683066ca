//! The one path normalisation used everywhere (`decisions.md` 1): comparison with `request`,
//! route and kind matching, the Fiat `url` claim, forwarding.
//!
//! Repeated slashes are merged and nothing else changes: no percent-decoding, no case
//! folding. Paths that could mean something else to another component are refused: a query
//! string or fragment, a `.` or `..` segment, an encoded slash.

use std::borrow::Cow;

/// Why a path cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathRejection {
    /// The path does not start with `/`.
    #[error("the path does not start with '/'")]
    NotAbsolute,
    /// A `?` query or `#` fragment: private endpoints take every parameter in the body.
    #[error("the path has a query string or fragment")]
    QueryOrFragment,
    /// A `.` or `..` segment.
    #[error("the path has a '.' or '..' segment")]
    DotSegment,
    /// `%2F` / `%2f` (an encoded slash).
    #[error("the path has an encoded slash")]
    EncodedSlash,
    /// A character outside visible ASCII.
    #[error("the path has a character outside visible ASCII")]
    InvalidCharacter,
}

/// Normalises a path: merges runs of `/` into one; refuses queries, fragments, dot segments,
/// encoded slashes and characters outside visible ASCII.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathRejection> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathRejection::NotAbsolute);
    }
    let mut needs_merge = false;
    let mut prev_slash = false;
    // One pass: the segment being read (its length, and whether it is dots only) tells dot
    // segments apart; they are reported only after every character was checked, so the
    // rejections keep their order.
    let mut dot_segment = false;
    let mut segment_len = 0usize;
    let mut segment_dots = true;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'?' | b'#' => return Err(PathRejection::QueryOrFragment),
            b'%' => {
                if let Some(&[b'2', f]) = bytes.get(i + 1..i + 3)
                    && (f == b'F' || f == b'f')
                {
                    return Err(PathRejection::EncodedSlash);
                }
            }
            0x21..=0x7e => {}
            _ => return Err(PathRejection::InvalidCharacter),
        }
        let slash = b == b'/';
        needs_merge |= slash && prev_slash;
        prev_slash = slash;
        if slash {
            dot_segment |= segment_dots && (segment_len == 1 || segment_len == 2);
            segment_len = 0;
            segment_dots = true;
        } else {
            segment_len += 1;
            segment_dots &= b == b'.';
        }
    }
    dot_segment |= segment_dots && (segment_len == 1 || segment_len == 2);
    if dot_segment {
        return Err(PathRejection::DotSegment);
    }
    if !needs_merge {
        return Ok(Cow::Borrowed(path));
    }
    let mut out = String::with_capacity(path.len());
    let mut prev_slash = false;
    for c in path.chars() {
        if c == '/' && prev_slash {
            continue;
        }
        prev_slash = c == '/';
        out.push(c);
    }
    Ok(Cow::Owned(out))
}

/// Whether `path` is under `prefix` by whole segments: `/api/v4/trade` matches
/// `/api/v4/trade` and `/api/v4/trade/x`, not `/api/v4/trade-account`. Both must already
/// be normalised. A prefix ending in `/` matches everything below it.
#[must_use]
pub fn path_has_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, written plainly: every character checked first, then dot segments
    /// found by splitting, then slashes merged.
    fn reference(path: &str) -> Result<String, PathRejection> {
        let bytes = path.as_bytes();
        if bytes.first() != Some(&b'/') {
            return Err(PathRejection::NotAbsolute);
        }
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'?' | b'#' => return Err(PathRejection::QueryOrFragment),
                b'%' if matches!(bytes.get(i + 1..i + 3), Some(b"2F" | b"2f")) => {
                    return Err(PathRejection::EncodedSlash);
                }
                0x21..=0x7e => {}
                _ => return Err(PathRejection::InvalidCharacter),
            }
        }
        if path.split('/').any(|s| s == "." || s == "..") {
            return Err(PathRejection::DotSegment);
        }
        let mut out = String::new();
        for c in path.chars() {
            if !(c == '/' && out.ends_with('/')) {
                out.push(c);
            }
        }
        Ok(out)
    }

    proptest! {
        #[test]
        fn one_pass_matches_the_definition(path in "/[/.a%2Ff?# é]{0,14}") {
            prop_assert_eq!(normalize_path(&path).map(Cow::into_owned), reference(&path));
        }
    }

    #[test]
    fn merges_slashes_only() {
        assert_eq!(normalize_path("/api/v4/x").as_deref(), Ok("/api/v4/x"));
        assert_eq!(
            normalize_path("//api///v4/x//").as_deref(),
            Ok("/api/v4/x/")
        );
        assert_eq!(normalize_path("/API/%41").as_deref(), Ok("/API/%41"));
        assert!(matches!(normalize_path("/a"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn refuses_ambiguous_paths() {
        assert_eq!(normalize_path("api"), Err(PathRejection::NotAbsolute));
        assert_eq!(normalize_path(""), Err(PathRejection::NotAbsolute));
        assert_eq!(
            normalize_path("/a?b=1"),
            Err(PathRejection::QueryOrFragment)
        );
        assert_eq!(normalize_path("/a#f"), Err(PathRejection::QueryOrFragment));
        assert_eq!(normalize_path("/a/./b"), Err(PathRejection::DotSegment));
        assert_eq!(normalize_path("/a/.."), Err(PathRejection::DotSegment));
        assert_eq!(normalize_path("/a%2fb"), Err(PathRejection::EncodedSlash));
        assert_eq!(normalize_path("/a%2Fb"), Err(PathRejection::EncodedSlash));
        assert_eq!(normalize_path("/a b"), Err(PathRejection::InvalidCharacter));
        assert_eq!(normalize_path("/é"), Err(PathRejection::InvalidCharacter));
        assert_eq!(normalize_path("/a/.b/..c").as_deref(), Ok("/a/.b/..c"));
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(path_has_prefix("/api/v4/trade", "/api/v4/trade"));
        assert!(path_has_prefix("/api/v4/trade/x", "/api/v4/trade"));
        assert!(!path_has_prefix("/api/v4/trade-account", "/api/v4/trade"));
        assert!(path_has_prefix("/api/v4/x", "/"));
        assert!(path_has_prefix("/api/v4/x", "/api/"));
    }
}
