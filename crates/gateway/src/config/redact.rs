//! TOML errors as messages that never repeat a password: values in `[store]` or in a URL with
//! credentials are left out.

/// A TOML error as a message: where (line, column, key) and why. The offending line is quoted
/// (as the TOML parser shows it) unless it lies in `[store]` (whose values are URLs with
/// passwords) or holds a URL with credentials; then, and whenever `hide_values`, the values
/// the reason would repeat are left out too. URLs left in the message lose their passwords.
pub(super) fn toml_message(text: &str, e: &toml::de::Error, hide_values: bool) -> String {
    let reason = e.message().trim_end();
    let Some(span) = e.span().filter(|span| span.start <= text.len()) else {
        let message = e.to_string();
        let message = if hide_values {
            hide_quoted_values(&message)
        } else {
            message
        };
        return wbauth_store::redact_urls_in(message.trim_end()).replace('\n', "\n  ");
    };
    let start = span.start;
    let end = span.end.clamp(start, text.len());
    let line = text[..start].matches('\n').count();
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..]
        .char_indices()
        .take_while(|(i, _)| line_start + i < start)
        .count()
        + 1;
    let last_line = line + text[start..end].matches('\n').count();
    let lines: Vec<&str> = text.split('\n').collect();
    let touched = lines.get(line..=last_line.min(lines.len().saturating_sub(1)));
    let key = key_path_at(&lines, line);
    let in_store = key == "store" || key.starts_with("store.");
    let credentials = touched.is_some_and(|touched| touched.iter().any(|l| has_credentials(l)));
    if !(hide_values || in_store || credentials) {
        let message = wbauth_store::redact_urls_in(e.to_string().trim_end());
        return message.replace('\n', "\n  ");
    }
    let place = if key.is_empty() {
        format!("line {}, column {column}", line + 1)
    } else {
        format!("line {}, column {column}, in {key}", line + 1)
    };
    format!(
        "{place}: {} (the line is not shown: it may hold a password)",
        wbauth_store::redact_urls_in(&hide_quoted_values(reason))
    )
}

/// Whether a line holds a URL with user information (`scheme://user:password@host`).
/// The line (from 1) and the key path a parse error points at, when it has a span.
pub(super) fn locate(text: &str, e: &toml::de::Error) -> (Option<usize>, Option<String>) {
    let Some(span) = e.span().filter(|span| span.start <= text.len()) else {
        return (None, None);
    };
    let line = text[..span.start].matches('\n').count();
    let lines: Vec<&str> = text.split('\n').collect();
    let key = key_path_at(&lines, line);
    (Some(line + 1), (!key.is_empty()).then_some(key))
}

fn has_credentials(line: &str) -> bool {
    line.find("://")
        .is_some_and(|at| line[at + 3..].contains('@'))
}

/// The dotted key of line `index` of a TOML document: its table (the last `[table]` or
/// `[[array]]` header above it) and the key before its `=`; empty when unknown.
fn key_path_at(lines: &[&str], index: usize) -> String {
    let unquote = |part: &str| {
        part.split('.')
            .map(|p| p.trim().trim_matches(['"', '\'']))
            .collect::<Vec<_>>()
            .join(".")
    };
    let header = |line: &str| {
        let line = line.trim();
        line.starts_with('[').then(|| {
            let inner = line.trim_start_matches('[');
            let inner = inner.split(']').next().unwrap_or_default();
            unquote(inner)
        })
    };
    let current = lines.get(index).copied().unwrap_or_default();
    if let Some(table) = header(current) {
        return table;
    }
    let table = lines
        .get(..index)
        .unwrap_or_default()
        .iter()
        .rev()
        .find_map(|l| header(l))
        .unwrap_or_default();
    let key = current
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| {
            !k.is_empty()
                && k.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\'' | ' ')
                })
        })
        .map(unquote)
        .unwrap_or_default();
    match (table.is_empty(), key.is_empty()) {
        (_, true) => table,
        (true, false) => key,
        (false, false) => format!("{table}.{key}"),
    }
}

/// A serde reason without the value it quotes: `invalid type: string "…", expected u32` →
/// `invalid type: a string, expected u32`; `unknown variant `…`, expected …` →
/// `unknown variant, expected …`.
fn hide_quoted_values(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut rest = reason;
    loop {
        let string = rest.find("string \"");
        let variant = rest.find("variant `");
        match (string, variant) {
            (Some(s), v) if v.is_none_or(|v| s < v) => {
                out.push_str(&rest[..s]);
                out.push_str("a string");
                // Skip the Debug-escaped string literal.
                let body = &rest[s + "string \"".len()..];
                let mut escaped = false;
                let close = body.char_indices().find(|&(_, c)| {
                    let end = c == '"' && !escaped;
                    escaped = c == '\\' && !escaped;
                    end
                });
                rest = close.map_or("", |(i, _)| &body[i + 1..]);
            }
            (_, Some(v)) => {
                out.push_str(&rest[..v]);
                out.push_str("variant");
                let body = &rest[v + "variant `".len()..];
                rest = body.find('`').map_or("", |i| &body[i + 1..]);
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}
