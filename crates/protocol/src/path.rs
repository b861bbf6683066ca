//! The one path rule used everywhere: comparison with `request`, routing, key kinds, endpoint
//! allow-lists, the Fiat `url` claim, forwarding, and the client before it signs
//! (`docs/paths-and-forwarding.md`).
//!
//! Repeated slashes are merged and nothing else changes: no percent-decoding, no case folding.
//! Then every segment must consist of RFC 3986 *unreserved* characters only
//! (`A–Z a–z 0–9 - . _ ~`) and no segment may be `.` or `..`. Anything else could name a
//! different endpoint to another component: `%2e%2e` is `..` to an upstream that decodes, `..;`
//! is `..` to Tomcat and Spring, `\` is `/` to some servers. Such paths are refused, never
//! repaired.

use std::borrow::Cow;

/// Why a path cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathRejection {
    /// The path does not start with `/`.
    #[error("the path does not start with '/'")]
    NotAbsolute,
    /// A `?` query or `#` fragment: private endpoints take every parameter in the body.
    #[error(
        "the path has a query string or fragment; private endpoints take every parameter in \
         the signed body"
    )]
    QueryOrFragment,
    /// A `%` escape of any kind (`%2F`, `%2e`, `%62` alike).
    #[error(
        "the path has a percent escape; write the path unencoded (a segment may hold only \
         letters, digits and - . _ ~)"
    )]
    PercentEscape,
    /// A character other than `/` and the unreserved ones: `;`, `\`, `:`, `@`, other
    /// sub-delimiters, spaces, controls, anything outside ASCII.
    #[error(
        "the path has the character {0:?}, which is not allowed (a segment may hold only \
         letters, digits and - . _ ~)"
    )]
    ForbiddenCharacter(char),
    /// A `.` or `..` segment.
    #[error("the path has a '.' or '..' segment")]
    DotSegment,
}

/// Whether `b` may appear in a path: `/` or an RFC 3986 unreserved character.
const fn allowed(b: u8) -> bool {
    matches!(b, b'/' | b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~')
}

/// The bytes of a path with nothing to look at twice: [`allowed`] ones but `.`.
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = allowed(i as u8) && i as u8 != b'.';
        i += 1;
    }
    table
};

/// Normalises a path: merges runs of `/` into one; refuses a path that does not start with `/`,
/// has a character other than `/` and `A–Z a–z 0–9 - . _ ~` (a query, a fragment, a `%` escape,
/// `;`, `\`, `:`, `@`, non-ASCII, …), or has a `.` or `..` segment. The first offending
/// character is reported; dot segments only when every character is allowed.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathRejection> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathRejection::NotAbsolute);
    }
    // The usual path (allowed characters, no `.`, no `//`) in a pass without branches: nothing
    // to refuse, nothing to merge.
    let mut plain = true;
    let mut prev_slash = false;
    for &b in bytes {
        let slash = b == b'/';
        plain &= PLAIN[usize::from(b)] & !(slash & prev_slash);
        prev_slash = slash;
    }
    if plain {
        return Ok(Cow::Borrowed(path));
    }
    normalize_checked(path)
}

/// [`normalize_path`] for a path starting with `/`, every character looked at.
fn normalize_checked(path: &str) -> Result<Cow<'_, str>, PathRejection> {
    let bytes = path.as_bytes();
    let mut needs_merge = false;
    let mut prev_slash = false;
    // One pass: the segment being read (its length, and whether it is dots only) tells dot
    // segments apart; they are reported only after every character was checked, so the
    // rejections keep their order.
    let mut dot_segment = false;
    let mut segment_len = 0usize;
    let mut segment_dots = true;
    for (i, &b) in bytes.iter().enumerate() {
        if !allowed(b) {
            return Err(refuse(path, i));
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

/// The rejection for the disallowed byte at `at` (the first one, so a character boundary).
#[cold]
fn refuse(path: &str, at: usize) -> PathRejection {
    match path.as_bytes().get(at) {
        Some(b'?' | b'#') => PathRejection::QueryOrFragment,
        Some(b'%') => PathRejection::PercentEscape,
        _ => PathRejection::ForbiddenCharacter(
            path.get(at..)
                .and_then(|rest| rest.chars().next())
                .unwrap_or(char::REPLACEMENT_CHARACTER),
        ),
    }
}

/// Why an endpoint pattern (of a key kind, a key's allow-list or a route) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternRejection {
    /// The path part breaks the path rule.
    #[error("{pattern:?}: {reason} (patterns are exact paths or /prefix/*)")]
    Path {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with its path.
        reason: PathRejection,
    },
    /// The path part has repeated slashes.
    #[error("{pattern:?} is not normalised (write {normalised:?})")]
    NotNormalised {
        /// The pattern as given.
        pattern: String,
        /// The pattern with its slashes merged.
        normalised: String,
    },
}

/// Checks an endpoint pattern: an exact path, `/prefix/*` (everything below the prefix) or `/*`
/// (everything). The path part must pass [`normalize_path`] unchanged; a `*` anywhere but in a
/// final `/*` is refused by the path rule itself.
pub fn check_pattern(pattern: &str) -> Result<(), PatternRejection> {
    let path = pattern.strip_suffix("/*").unwrap_or(pattern);
    if path.is_empty() {
        return Ok(());
    }
    match normalize_path(path) {
        Ok(n) if n == path => Ok(()),
        Ok(n) => Err(PatternRejection::NotNormalised {
            pattern: pattern.to_owned(),
            normalised: format!("{n}{}", pattern.get(path.len()..).unwrap_or_default()),
        }),
        Err(reason) => Err(PatternRejection::Path {
            pattern: pattern.to_owned(),
            reason,
        }),
    }
}

/// Whether endpoint `pattern` (checked by [`check_pattern`]) opens `path` (normalised): an exact
/// path opens itself; `/prefix/*` opens every path strictly below `/prefix`; `/*` opens all.
#[must_use]
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix("/*") {
        Some(prefix) => {
            path.len() > prefix.len() + 1
                && path.starts_with(prefix)
                && path.as_bytes().get(prefix.len()) == Some(&b'/')
        }
        None => pattern == path,
    }
}

/// Whether every path endpoint pattern `inner` opens is also opened by `outer`.
#[must_use]
pub fn pattern_within(inner: &str, outer: &str) -> bool {
    match (inner.strip_suffix("/*"), outer.strip_suffix("/*")) {
        (_, Some("")) => true,
        (None, _) => pattern_matches(outer, inner),
        (Some(inner_prefix), Some(outer_prefix)) => {
            inner_prefix == outer_prefix
                || (inner_prefix.starts_with(outer_prefix)
                    && inner_prefix.as_bytes().get(outer_prefix.len()) == Some(&b'/'))
        }
        (Some(_), None) => false,
    }
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
        if !path.starts_with('/') {
            return Err(PathRejection::NotAbsolute);
        }
        for c in path.chars() {
            match c {
                '?' | '#' => return Err(PathRejection::QueryOrFragment),
                '%' => return Err(PathRejection::PercentEscape),
                '/' | '-' | '.' | '_' | '~' => {}
                c if c.is_ascii_alphanumeric() => {}
                c => return Err(PathRejection::ForbiddenCharacter(c)),
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
        fn one_pass_matches_the_definition(path in "/[/.a%2Ff?# é;:@\\\\~_*!$&'()+,=Z9-]{0,14}") {
            prop_assert_eq!(normalize_path(&path).map(Cow::into_owned), reference(&path));
        }

        #[test]
        fn accepted_paths_are_unreserved_only(path in "\\PC{0,24}") {
            if let Ok(n) = normalize_path(&path) {
                prop_assert!(n.bytes().all(allowed));
                prop_assert!(!n.contains("//"));
                prop_assert!(n.split('/').all(|s| s != "." && s != ".."));
            }
        }
    }

    /// Every path of up to seven characters over `/ a . %` (the plain pass and the checked
    /// one meet there), against the definition.
    #[test]
    fn short_paths_match_the_definition_exhaustively() {
        let alphabet = ['/', 'a', '.', '%'];
        let mut paths = vec![String::from("/")];
        for _ in 0..6 {
            let longer: Vec<String> = paths
                .iter()
                .flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}")))
                .collect();
            for path in &longer {
                assert_eq!(
                    normalize_path(path).map(Cow::into_owned),
                    reference(path),
                    "{path}"
                );
            }
            paths = longer;
        }
    }

    #[test]
    fn merges_slashes_only() {
        assert_eq!(normalize_path("/api/v4/x").as_deref(), Ok("/api/v4/x"));
        assert_eq!(
            normalize_path("//api///v4/x//").as_deref(),
            Ok("/api/v4/x/")
        );
        assert_eq!(
            normalize_path("/API/a-b_c.d~e").as_deref(),
            Ok("/API/a-b_c.d~e")
        );
        assert!(matches!(normalize_path("/a"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn refuses_every_class_of_ambiguous_path() {
        use PathRejection::*;
        let cases: &[(&str, PathRejection)] = &[
            ("api", NotAbsolute),
            ("", NotAbsolute),
            ("/a?b=1", QueryOrFragment),
            ("/a?", QueryOrFragment),
            ("/a#f", QueryOrFragment),
            ("/a/./b", DotSegment),
            ("/a/..", DotSegment),
            ("/a/%2e%2e/b", PercentEscape),
            ("/a/%2E%2E/b", PercentEscape),
            ("/a/.%2e/b", PercentEscape),
            ("/a%2fb", PercentEscape),
            ("/a%2Fb", PercentEscape),
            ("/a/%62", PercentEscape),
            ("/a/%5c../b", PercentEscape),
            ("/a%", PercentEscape),
            ("/a/..;/b", ForbiddenCharacter(';')),
            ("/a;jsessionid=1", ForbiddenCharacter(';')),
            ("/a\\..\\b", ForbiddenCharacter('\\')),
            ("/a:b", ForbiddenCharacter(':')),
            ("/a@b", ForbiddenCharacter('@')),
            ("/a!b", ForbiddenCharacter('!')),
            ("/a$b", ForbiddenCharacter('$')),
            ("/a&b", ForbiddenCharacter('&')),
            ("/a'b", ForbiddenCharacter('\'')),
            ("/a(b)", ForbiddenCharacter('(')),
            ("/a*", ForbiddenCharacter('*')),
            ("/a+b", ForbiddenCharacter('+')),
            ("/a,b", ForbiddenCharacter(',')),
            ("/a=b", ForbiddenCharacter('=')),
            ("/a b", ForbiddenCharacter(' ')),
            ("/a\tb", ForbiddenCharacter('\t')),
            ("/a\"b", ForbiddenCharacter('"')),
            ("/a<b>", ForbiddenCharacter('<')),
            ("/a[b]", ForbiddenCharacter('[')),
            ("/a{b}", ForbiddenCharacter('{')),
            ("/a|b", ForbiddenCharacter('|')),
            ("/a^b", ForbiddenCharacter('^')),
            ("/a`b", ForbiddenCharacter('`')),
            ("/é", ForbiddenCharacter('é')),
            ("/a\u{2215}b", ForbiddenCharacter('\u{2215}')),
            ("/a\u{0}", ForbiddenCharacter('\u{0}')),
        ];
        for (path, expected) in cases {
            assert_eq!(normalize_path(path), Err(*expected), "{path:?}");
        }
        assert_eq!(normalize_path("/a/.b/..c").as_deref(), Ok("/a/.b/..c"));
    }

    #[test]
    fn messages_say_what_to_do() {
        assert_eq!(
            PathRejection::ForbiddenCharacter(';').to_string(),
            "the path has the character ';', which is not allowed (a segment may hold only \
             letters, digits and - . _ ~)"
        );
        assert!(
            PathRejection::PercentEscape
                .to_string()
                .contains("unencoded")
        );
    }

    #[test]
    fn patterns_follow_the_path_rule() {
        assert_eq!(check_pattern("/*"), Ok(()));
        assert_eq!(check_pattern("/api/v4/trade-account/*"), Ok(()));
        assert_eq!(check_pattern("/api/v4/main-account/withdraw"), Ok(()));
        assert_eq!(
            check_pattern("/api//v4/*"),
            Err(PatternRejection::NotNormalised {
                pattern: "/api//v4/*".into(),
                normalised: "/api/v4/*".into()
            })
        );
        for bad in [
            "/api/*/x",
            "/api/v4*",
            "/api/%2e%2e/*",
            "/api/a;b",
            "api/*",
            "/api/../x",
        ] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns_match_and_nest() {
        assert!(pattern_matches(
            "/api/v4/trade-account/*",
            "/api/v4/trade-account/balance"
        ));
        assert!(!pattern_matches(
            "/api/v4/trade-account/*",
            "/api/v4/trade-account"
        ));
        assert!(!pattern_matches(
            "/api/v4/trade/*",
            "/api/v4/trade-account/balance"
        ));
        assert!(pattern_matches("/api/v4/jwt", "/api/v4/jwt"));
        assert!(!pattern_matches("/api/v4/jwt", "/api/v4/jwt/x"));
        assert!(pattern_matches("/*", "/anything/at/all"));
        assert!(pattern_within("/a/b", "/a/*"));
        assert!(pattern_within("/a/b/*", "/a/*"));
        assert!(pattern_within("/a/*", "/a/*"));
        assert!(pattern_within("/anything/*", "/*"));
        assert!(pattern_within("/a", "/a"));
        assert!(!pattern_within("/a", "/a/*"));
        assert!(!pattern_within("/a/*", "/a/b"));
        assert!(!pattern_within("/ab/*", "/a/*"));
        assert!(!pattern_within("/*", "/a/*"));
        assert!(!pattern_within("/ab", "/a/*"));
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
