//! Unit tests of `wbauth bench`'s parsers, key assignment and statistics.

use std::time::Duration;

use super::args::parse_duration;
use super::args::parse_secret;
use super::args::parse_watch;
use super::cpu::{parse_stat_ticks, pid_ticks, watched_seconds};
use super::keys::{keys_of_connection, parse_keys_csv};
use super::plan::parse_target;
use super::report::Percentiles;

#[test]
fn every_key_is_taken_by_exactly_one_connection() {
    for (keys, connections) in [
        (256, 32),
        (33, 32),
        (7, 3),
        (32, 32),
        (5, 8),
        (1, 4),
        (0, 4),
    ] {
        let mut seen = vec![0u32; keys];
        for index in 0..connections {
            let mine: Vec<usize> = keys_of_connection(keys, connections, index).collect();
            if keys > 0 {
                assert!(!mine.is_empty(), "{keys} keys, {connections} connections");
            }
            for k in mine {
                seen[k] += 1;
            }
        }
        if keys > connections {
            assert!(
                seen.iter().all(|&n| n == 1),
                "{keys}/{connections}: {seen:?}"
            );
        } else {
            // Fewer keys than connections: shared, every key in use.
            assert!(
                seen.iter().all(|&n| n >= 1),
                "{keys}/{connections}: {seen:?}"
            );
        }
    }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    assert_eq!(parse_duration(" 3s "), Ok(Duration::from_secs(3)));
    for bad in [
        "",
        "10",
        "s",
        "1.5s",
        "-1s",
        "10 s",
        "5x",
        "1sm",
        "99999999999999999999s",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
    }
    assert!(
        parse_duration("10")
            .err()
            .is_some_and(|e| e.contains("unit"))
    );
}

#[test]
fn keys_csv() {
    let text =
        "# bench keys\n\nkey-a,secret-a\n  key-b , secret-b  \n# another comment\nkey-c,sec,ret\n";
    let keys = parse_keys_csv(text).unwrap_or_default();
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["key-a", "key-b", "key-c"]);
    let secrets: Vec<&str> = keys.iter().map(|(_, s)| s.0.as_str()).collect();
    assert_eq!(secrets, ["secret-a", "secret-b", "sec,ret"]);
    assert_eq!(parse_keys_csv("# nothing\n\n").map(|k| k.len()), Ok(0));
}

#[test]
fn keys_csv_errors_name_the_line_not_the_secret() {
    let err = parse_keys_csv("a,b\nno-comma-top-secret\n")
        .err()
        .unwrap_or_default();
    assert!(err.contains("line 2"), "{err}");
    assert!(!err.contains("top-secret"), "{err}");
    assert!(parse_keys_csv(",secret").is_err());
    assert!(parse_keys_csv("key,").is_err());
    let dup = parse_keys_csv("k,s1\nk,s2").err().unwrap_or_default();
    assert!(dup.contains("twice") && !dup.contains("s2"), "{dup}");
}

#[test]
fn secrets_are_redacted() {
    let secret = parse_secret("hunter2")
        .map(|s| format!("{s:?}"))
        .unwrap_or_default();
    assert_eq!(secret, "Secret(<redacted>)");
}

#[test]
fn targets() {
    let t = parse_target("http://127.0.0.1:8080/api/v4/trade-account/balance");
    let t = t
        .as_ref()
        .map(|t| (t.host.as_str(), t.port, t.path.as_str()));
    assert_eq!(t, Ok(("127.0.0.1", 8080, "/api/v4/trade-account/balance")));
    let t = parse_target("http://[::1]/x?y=1");
    let t = t.as_ref().map(|t| {
        (
            t.host.as_str(),
            t.port,
            t.path.as_str(),
            t.origin.to_string(),
        )
    });
    assert_eq!(t, Ok(("::1", 80, "/x", "/x?y=1".to_owned())));
    let t = parse_target("https://example.com/x").expect("https");
    assert!(t.https && t.port == 443, "{}:{}", t.host, t.port);
    assert!(parse_target("127.0.0.1:8080/x").is_err());
    assert!(parse_target("http://user:pw@host/x").is_err());
}

#[test]
fn stat_fields() {
    let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 37 0 0 20 0 3 0";
    assert_eq!(parse_stat_ticks(stat), Some(287));
    assert_eq!(parse_stat_ticks("garbage"), None);
}

#[test]
fn percentiles_nearest_rank() {
    let samples: Vec<u32> = (1..=1000).collect();
    let p = Percentiles::of_sorted(&samples);
    assert_eq!(
        p,
        Some(Percentiles {
            p50: 500,
            p90: 900,
            p99: 990,
            max: 1000,
            mean: 500
        })
    );
    assert_eq!(Percentiles::of_sorted(&[]), None);
    assert_eq!(
        Percentiles::of_sorted(&[7]).map(|p| (p.p50, p.max)),
        Some((7, 7))
    );
}

#[test]
fn watched_processes_are_parsed_and_summed_per_name() {
    assert_eq!(parse_watch("gateway=42"), Ok(("gateway".into(), 42)));
    assert!(parse_watch("gateway").is_err());
    assert!(parse_watch("=42").is_err());
    assert!(parse_watch("nginx=x").is_err());
    let watch = vec![
        ("nginx".to_owned(), 1),
        ("echo".to_owned(), 2),
        ("nginx".to_owned(), 3),
    ];
    let start = [Some(100), Some(10), Some(50)];
    let end = [Some(150), Some(30), Some(75)];
    let got = watched_seconds(&watch, &start, &end);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "nginx");
    assert!((got[0].1.unwrap_or(0.0) - 0.75).abs() < 1e-9);
    assert_eq!(got[1].0, "echo");
    assert!((got[1].1.unwrap_or(0.0) - 0.2).abs() < 1e-9);
    let gone = watched_seconds(&watch, &[Some(1), None, Some(1)], &[Some(2), None, Some(2)]);
    assert_eq!(gone[1].1, None);
    // This very process can be read.
    assert!(pid_ticks(std::process::id()).is_some());
}
