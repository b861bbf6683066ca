//! `application/x-www-form-urlencoded` text: console forms and admin query strings, decoded by
//! one percent-decoder.

/// An `application/x-www-form-urlencoded` body (repeated names kept in order).
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        Form(
            text.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent(k), percent(v))
                })
                .collect(),
        )
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }

    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Percent-decoding with `+` as space; bad escapes are kept as they are.
fn percent(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'+' {
            out.push(b' ');
        } else if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|c| char::from(*c).to_digit(16)),
                bytes.get(i + 2).and_then(|c| char::from(*c).to_digit(16)),
            )
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        } else {
            out.push(b);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One parameter of a query string, percent-decoded (the first when repeated).
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    Form::parse(query.unwrap_or_default().as_bytes())
        .get(name)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_escapes_are_kept_and_plus_is_a_space() {
        assert_eq!(percent("%zz%4"), "%zz%4");
        assert_eq!(percent("a%2"), "a%2");
        assert_eq!(percent("a%zz"), "a%zz");
        assert_eq!(percent("a+b%20c"), "a b c");
        // Not an escape (the old admin decoder read it as byte 1): `%` kept, `+` a space.
        assert_eq!(percent("%+1"), "% 1");
    }

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(
            query_param(Some("account=al%69ce&limit=5"), "account").as_deref(),
            Some("alice")
        );
        assert_eq!(query_param(Some("limit=5"), "account"), None);
        assert_eq!(query_param(None, "account"), None);
    }
}
