//! How the commands print: JSON, `name=value` lines, aligned tables, the names and lists of
//! the admin API's views, and files of keys. Every command prints through these helpers.

use std::fmt::Display;
use std::io::Write as _;
use std::path::Path;

use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::CliError;

/// Prints JSON: pretty on a terminal, compact otherwise.
pub(crate) fn print_json(value: &Value) {
    use std::io::IsTerminal as _;
    let text = if std::io::stdout().is_terminal() {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    println!("{}", text.unwrap_or_else(|_| value.to_string()));
}

/// Prints JSON that carries a secret: one compact line, through a buffer wiped afterwards.
pub(crate) fn print_secret_json(value: &Value) {
    let mut out = std::io::stdout().lock();
    let line = Zeroizing::new(value.to_string());
    let _ = writeln!(out, "{}", line.as_str());
    let _ = out.flush();
}

/// Prints `name=value` lines at once and flushes them: what a script reads from a command that
/// keeps running (`listening=http://…`) or that shows a secret once (`api_secret=…`).
pub(crate) fn print_fields<V: Display>(fields: &[(&str, V)]) {
    let mut out = std::io::stdout().lock();
    for (name, value) in fields {
        let _ = writeln!(out, "{name}={value}");
    }
    let _ = out.flush();
}

/// Prints a secret that is shown once: `headline:`, the `name=value` lines (like the sandbox's)
/// and a reminder that `what` is never shown again.
pub(crate) fn print_shown_once(headline: &str, fields: &[(&str, &str)], what: &str) {
    println!("{headline}:");
    print_fields(fields);
    println!("Store {what} now: it is never shown again.\n");
}

/// Prints rows as aligned columns.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let width = widths.get(i).copied().unwrap_or(0);
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// An optional time: `never` when there is none.
pub(crate) fn format_opt_time(ms: Option<u64>) -> String {
    ms.map_or_else(|| "never".to_owned(), format_time)
}

/// A list, joined; `empty` when there is nothing in it.
pub(crate) fn joined(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_owned()
    } else {
        items.join(", ")
    }
}

/// The name the admin API gives a state (`active`, `pending`, …): its JSON string.
pub(crate) fn label<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}

/// Writes `public_key,secret` lines (after a `# public_key,secret (what)` comment) to a new
/// private file (mode 0600; an existing file is replaced). `wbauth bench --keys` reads it.
pub(crate) fn write_keys_file(
    path: &Path,
    what: &str,
    pairs: &[(String, String)],
) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError::Config(format!("{}: {e}", path.display()));
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let file = whitebit_gateway::store::secret_file::create_new(path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "# public_key,secret ({what})").map_err(io)?;
    for (key, secret) in pairs {
        writeln!(out, "{key},{secret}").map_err(io)?;
    }
    out.flush().map_err(io)
}

/// A Unix ms time as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn format_time(ms: u64) -> String {
    whitebit_auth::time::format_utc(ms, whitebit_auth::time::Precision::Second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_lists() {
        use whitebit_gateway::views::{KeyState, TwoFactor};
        assert_eq!(label(&KeyState::Idle), "idle");
        assert_eq!(label(&TwoFactor::Pending), "pending");
        assert_eq!(joined(&[], "any"), "any");
        assert_eq!(joined(&["a".to_owned(), "b".to_owned()], "any"), "a, b");
        assert_eq!(format_opt_time(None), "never");
        assert_eq!(format_opt_time(Some(0)), "1970-01-01 00:00:00 UTC");
    }
}
