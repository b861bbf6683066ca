//! `WBAUTH_GATEWAY__SECTION__KEY` environment overrides.

use super::ConfigError;

/// The environment variable prefix of overrides.
pub const ENV_PREFIX: &str = "WBAUTH_GATEWAY__";

/// Sets `a.b.c` from `WBAUTH_GATEWAY__A__B__C=value`; the value is read as TOML when it
/// parses as a TOML value (numbers, booleans, arrays), else as a string.
pub(super) fn apply_override(
    table: &mut toml::Table,
    var: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let path: Vec<String> = var[ENV_PREFIX.len()..]
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect();
    if path.iter().any(String::is_empty) {
        return Err(ConfigError::new(
            var,
            "expected WBAUTH_GATEWAY__SECTION__KEY",
        ));
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let (last, sections) = path
        .split_last()
        .ok_or_else(|| ConfigError::new(var, "empty key"))?;
    let mut current = table;
    for section in sections {
        let entry = current
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| ConfigError::new(var, format!("{section} is not a section")))?;
    }
    current.insert(last.clone(), parsed);
    Ok(())
}
