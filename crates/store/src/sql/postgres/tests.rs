use std::collections::BTreeMap;

use super::*;
use crate::Change;

/// `table → [column, …]` of the `CREATE TABLE` statements in `sql`.
fn tables(sql: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in sql.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
            let name = rest.trim_end_matches('(').trim().to_owned();
            current = Some((name, Vec::new()));
        } else if line.starts_with(");") {
            if let Some((name, columns)) = current.take() {
                out.insert(name, columns);
            }
        } else if let Some((_, columns)) = current.as_mut()
            && let Some(column) = line.split_whitespace().next()
            && !line.starts_with("--")
            && !matches!(column, "PRIMARY" | "UNIQUE" | "CHECK" | "FOREIGN")
        {
            columns.push(column.to_owned());
        }
    }
    out
}

#[test]
fn both_key_stores_have_the_same_tables_and_columns() {
    let sqlite = [
        include_str!("../../../migrations/sqlite/0001_init.sql"),
        include_str!("../../../migrations/sqlite/0002_partners.sql"),
    ]
    .concat();
    let postgres = [
        include_str!("../../../migrations/postgres/0001_init.sql"),
        include_str!("../../../migrations/postgres/0002_partners.sql"),
    ]
    .concat();
    let (sqlite, postgres) = (tables(&sqlite), tables(&postgres));
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        ["accounts", "api_keys", "audit", "meta", "partners"]
    );
    assert_eq!(sqlite, postgres);
    // The nonce tables are PostgreSQL's own (the embedded nonce store is a journal).
    // The console's tables, each store's own migrations.
    let sqlite = [
        include_str!("../../../migrations/sqlite/0003_console.sql"),
        include_str!("../../../migrations/sqlite/0004_console_links.sql"),
    ]
    .concat();
    let postgres = [
        include_str!("../../../migrations/postgres/0005_console.sql"),
        include_str!("../../../migrations/postgres/0006_console_links.sql"),
    ]
    .concat();
    let (sqlite, postgres) = (tables(&sqlite), tables(&postgres));
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        ["console_links", "console_passwords"]
    );
    assert_eq!(sqlite, postgres);
    let nonces = tables(include_str!("../../../migrations/postgres/0003_nonces.sql"));
    assert_eq!(
        nonces.keys().collect::<Vec<_>>(),
        ["nonce_high_water", "nonce_window"]
    );
}

#[test]
fn announcements_parse() {
    assert_eq!(parse_change("key:17"), Some(Change::Key(17)));
    assert_eq!(parse_change("partner:3"), Some(Change::Partner(3)));
    assert_eq!(parse_change("key:-1"), None);
    assert_eq!(parse_change("key:"), None);
    assert_eq!(parse_change("other:1"), None);
    assert_eq!(parse_change("key17"), None);
    assert_eq!(parse_change("resync"), Some(Change::Resync));
    assert_eq!(payload(Subject::Everything), "resync");
    assert_eq!(payload(Subject::Key(5)), "key:5");
    assert_eq!(payload(Subject::Partner(6)), "partner:6");
}

#[test]
fn the_mapping_preserves_order_and_round_trips() {
    let samples = [
        0,
        1,
        (1 << 53) - 1,
        1 << 53,
        (1 << 53) + 1,
        i64::MAX as u64,
        (i64::MAX as u64) + 1,
        u64::MAX - 1,
        u64::MAX,
    ];
    for pair in samples.windows(2) {
        assert!(
            u64_to_ordered_i64(pair[0]) < u64_to_ordered_i64(pair[1]),
            "{pair:?}"
        );
    }
    for n in samples {
        assert_eq!(ordered_i64_to_u64(u64_to_ordered_i64(n)), n);
    }
    assert_eq!(u64_to_ordered_i64(0), i64::MIN);
    assert_eq!(u64_to_ordered_i64(u64::MAX), i64::MAX);
}
