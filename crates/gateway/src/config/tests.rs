use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, "gateway.toml", &[])
}

#[test]
fn defaults_need_no_file() {
    let c = load("").expect("defaults");
    assert_eq!(c.listen.addr.to_string(), "127.0.0.1:8080");
    assert_eq!(c.admin.addr.to_string(), "127.0.0.1:8081");
    assert_eq!(c.verify.max_body_bytes, 65_536);
    assert_eq!(c.listen.max_connections, 10_000);
    assert_eq!(c.keys.idle_days, 14);
    assert_eq!(c.keys.max_ips, 50);
    assert_eq!(c.verify.body_match, BodyMatchConfig::Exact);
    assert_eq!(c.runtime.workers, 0);
    assert!(!c.runtime.shared);
    assert_eq!(c.runtime.upstream_connections, 256);
    assert!(c.runtime.worker_count() >= 1);
}

#[test]
fn runtime_section() {
    let c =
        load("[runtime]\nworkers = 3\nshared = true\nupstream_connections = 8\n").expect("valid");
    assert_eq!(c.runtime.worker_count(), 3);
    assert!(c.runtime.shared);
    assert_eq!(c.runtime.upstream_connections, 8);
    for (text, key) in [
        (
            "[runtime]\nupstream_connections = 0\n",
            "runtime.upstream_connections",
        ),
        ("[runtime]\nworkers = 5000\n", "runtime.workers"),
        ("[runtime]\nthreads = 2\n", "threads"),
    ] {
        let e = load(text).expect_err("refused").to_string();
        assert!(e.contains(key), "{text}: {e}");
    }
}

#[test]
fn full_file() {
    let c = load(
        r#"
[listen]
addr = "0.0.0.0:9000"
[verify]
body_match = "json"
[proxy]
trusted = ["10.0.0.0/8", "::1"]
[[route]]
prefix = "/api/v4"
upstream = "http://127.0.0.1:7000"
[[kind]]
name = "trade"
paths = ["/api/v4/trade-account/*", "/api/v4/order/new"]
[rate_limit]
trade = { requests = 10, window_ms = 1000 }
"#,
    )
    .expect("valid");
    assert_eq!(c.routes[0].timeout_ms, 30_000);
    assert_eq!(c.kinds[0].paths.len(), 2);
    assert_eq!(c.rate_limit.kinds["trade"].requests, 10);
}

#[test]
fn errors_name_file_line_key_and_reason() {
    let e = load("[verify]\nbody_match = \"fuzzy\"\n").expect_err("bad enum");
    let text = e.to_string();
    assert!(text.starts_with("gateway.toml: "), "{text}");
    assert!(text.contains("line 2") && text.contains("fuzzy"), "{text}");
    let e = load("[verify]\nbodymatch = \"json\"\n").expect_err("unknown key");
    assert!(e.to_string().contains("bodymatch"), "{e}");
    let e = load("[[route]]\nprefix = \"/api//v4\"\nupstream = \"http://x:1\"\n")
        .expect_err("not normalised");
    assert!(e.to_string().contains("route[0].prefix"), "{e}");
    let e = load("[[route]]\nprefix = \"/api\"\nupstream = \"ftp://x\"\n").expect_err("scheme");
    assert!(e.to_string().contains("route[0].upstream"), "{e}");
    let e = load("[[route]]\nprefix = \"/api\"\nupstream = \"http://x:1\"\nca = \"ca.pem\"\n")
        .expect_err("ca without https");
    assert!(
        e.to_string().contains("route[0].ca: only for an https://"),
        "{e}"
    );
    let e = load("[proxy]\ntrusted = [\"10.0.0.0/33\"]\n").expect_err("cidr");
    assert!(e.to_string().contains("proxy.trusted[0]"), "{e}");
    let e = load("[[kind]]\nname = \"t\"\npaths = [\"/a/*/b\"]\n").expect_err("pattern");
    assert!(e.to_string().contains("kind[0].paths[0]"), "{e}");
    let e =
        load("[rate_limit]\nnope = { requests = 1, window_ms = 1 }\n").expect_err("unknown kind");
    assert!(e.to_string().contains("rate_limit.nope"), "{e}");
    let e = load("[[kind]]\nname = \"t\"\npaths = [\"/api/%2e%2e/*\"]\n").expect_err("escape");
    assert!(e.to_string().contains("kind[0].paths[0]"), "{e}");
    assert!(e.to_string().contains("percent escape"), "{e}");
}

#[test]
fn forwarded_headers_are_an_allow_list() {
    let route = |names: &str| {
        load(&format!(
            "[[route]]\nprefix = \"/api\"\nupstream = \"http://x:1\"\nforward_headers = [{names}]\n"
        ))
    };
    let c = route("\"X-Request-Id\", \"X-Tenant\"").expect("valid names");
    assert_eq!(
        c.routes[0].forward_headers.as_deref(),
        Some(&["X-Request-Id".to_owned(), "X-Tenant".to_owned()][..])
    );
    for (bad, why) in [
        ("x_auth_account", "'_'"),
        ("X-Auth-Account", "never forwarded"),
        ("Authorization", "never forwarded"),
        ("Cookie", "never forwarded"),
        ("X-Original-URL", "never forwarded"),
        ("X-HTTP-Method-Override", "never forwarded"),
        ("X-Forwarded-For", "never forwarded"),
        ("X-Real-IP", "never forwarded"),
        ("X-TXC-APIKEY", "never forwarded"),
        ("Connection", "never forwarded"),
        ("Host", "never forwarded"),
        ("bad name", "not a valid header name"),
    ] {
        let e = route(&format!("\"X-Request-Id\", \"{bad}\"")).expect_err(bad);
        let text = e.to_string();
        assert!(text.contains("route[0].forward_headers[1]"), "{text}");
        assert!(text.contains(why), "{bad}: {text}");
    }
}

#[test]
fn store_values_and_credentials_are_never_quoted() {
    // Every file and value below holds one password, `S3cret` and a letter.
    let password = |text: &str| {
        let at = text.find("S3cret").expect("a password in the case");
        text[at..at + 7].to_owned()
    };
    // (file, what the message must still say)
    let cases: [(&str, &[&str]); 9] = [
        (
            "[store]\nkeys = \"postgres://wb:S3cretA@db/keys\n",
            &["line 2, column", "in store.keys", "not shown"],
        ),
        (
            "[store]\npool_size = \"S3cretB\"\n",
            &[
                "line 2",
                "in store.pool_size",
                "invalid type: a string, expected u32",
            ],
        ),
        (
            "[store]\ndurability = \"postgres://wb:S3cretC@db/x\"\n",
            &[
                "in store.durability",
                "unknown variant, expected `process-crash`",
            ],
        ),
        (
            "store.keys = \"postgres://wb:S3cretD@db/keys\" x\n",
            &["line 1", "in store.keys"],
        ),
        (
            "store = { keys = \"postgres://wb:S3cretE@db/keys\", x }\n",
            &["line 1", "in store"],
        ),
        (
            "[console]\npublic_url = \"https://ops:S3cretF@c.example\" oops\n",
            &["line 2", "in console.public_url"],
        ),
        (
            "[[route]]\nprefix = \"/api\"\nupstream = \"http://ops:S3cretG@x:1\"\n",
            &["route[0].upstream", "without user name or password"],
        ),
        (
            "[console]\npublic_url = \"ftp://ops:S3cretH@c.example\"\n",
            &["console.public_url"],
        ),
        (
            "[store]\nnonces = \"memcached://:S3cretI/x@cache\"\n",
            &["store.nonces", "unsupported nonce store"],
        ),
    ];
    for (text, said) in cases {
        let password = password(text);
        let e = load(text).expect_err(text).to_string();
        assert!(!e.contains(&password), "{text}: {e}");
        assert!(e.starts_with("gateway.toml: "), "{e}");
        for s in said {
            assert!(e.contains(s), "{text}: {s:?} missing in {e}");
        }
    }
    // Through the environment.
    for (var, value) in [
        (
            "WBAUTH_GATEWAY__STORE__DURABILITY",
            "postgres://wb:S3cretJ@db/x",
        ),
        ("WBAUTH_GATEWAY__STORE__POOL_SIZE", "S3cretK"),
        ("WBAUTH_GATEWAY__STORE__KEYS", "mysql://root:S3cretL@db/k"),
    ] {
        let password = password(value);
        let vars = vec![(var.to_owned(), value.to_owned())];
        let e = Config::from_toml("", "g.toml", &vars)
            .expect_err(var)
            .to_string();
        assert!(!e.contains(&password), "{var}: {e}");
        assert!(e.contains("store."), "{var}: {e}");
    }
    // Elsewhere the line is still quoted.
    let e = load("[verify]\nbody_match = \"fuzzy\"\n").expect_err("bad enum");
    assert!(e.to_string().contains("body_match = \"fuzzy\""), "{e}");
    // Debug shows no password.
    let c =
        load("[store]\nkeys = \"postgres://wb:S3cretM@db/k\"\nnonces = \"redis://:S3cretN@c/0\"\n")
            .expect("valid");
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("S3cretM") && !debug.contains("S3cretN"),
        "{debug}"
    );
    assert!(debug.contains("postgres://wb:***@db/k"), "{debug}");
}

#[test]
fn the_admin_listener_stays_on_loopback_unless_allowed() {
    for (toml, said) in [
        (
            "[admin]\naddr = \"0.0.0.0:8081\"\n",
            "admin.addr: 0.0.0.0:8081",
        ),
        ("[admin]\naddr = \"[::]:8081\"\n", "admin.addr: [::]:8081"),
        (
            "[admin]\naddr = \"10.0.0.5:8081\"\n",
            "admin.addr: 10.0.0.5:8081",
        ),
        (
            "[admin]\nhosts = [\"admin.internal\"]\n",
            "admin.hosts: only used with [admin] allow_remote = true",
        ),
        (
            "[admin]\naddr = \"0.0.0.0:8081\"\nallow_remote = true\nhosts = [\"a b\"]\n",
            "admin.hosts[0]",
        ),
    ] {
        let e = load(toml).expect_err(toml).to_string();
        assert!(e.contains(said), "{toml}: {e}");
        assert!(
            e.contains("allow_remote") || e.contains("admin.hosts[0]"),
            "{e}"
        );
    }
    for toml in [
        "[admin]\naddr = \"127.0.0.1:8081\"\n",
        "[admin]\naddr = \"127.0.0.2:0\"\n",
        "[admin]\naddr = \"[::1]:8081\"\n",
        "[admin]\naddr = \"[::ffff:127.0.0.1]:8081\"\n",
        "[admin]\naddr = \"0.0.0.0:8081\"\nallow_remote = true\n",
        "[admin]\naddr = \"10.0.0.5:8081\"\nallow_remote = true\nhosts = [\"admin.internal\", \"10.0.0.5:8081\", \"[fd00::1]:8081\"]\n",
    ] {
        load(toml).expect(toml);
    }
    let vars = vec![(
        "WBAUTH_GATEWAY__ADMIN__ADDR".to_owned(),
        "0.0.0.0:8081".to_owned(),
    )];
    let e = Config::from_toml("", "g.toml", &vars).expect_err("refused");
    assert!(e.to_string().contains("allow_remote = true"), "{e}");
}

#[test]
fn environment_overrides() {
    let vars = vec![
        (
            "WBAUTH_GATEWAY__VERIFY__BODY_MATCH".to_owned(),
            "json".to_owned(),
        ),
        (
            "WBAUTH_GATEWAY__VERIFY__MAX_BODY_BYTES".to_owned(),
            "1024".to_owned(),
        ),
        (
            "WBAUTH_GATEWAY__LISTEN__ADDR".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
    ];
    let c =
        Config::from_toml("[verify]\nbody_match = \"exact\"\n", "f.toml", &vars).expect("valid");
    assert_eq!(c.verify.body_match, BodyMatchConfig::Json);
    assert_eq!(c.verify.max_body_bytes, 1024);
    assert_eq!(c.listen.addr.port(), 0);
    let bad = vec![(
        "WBAUTH_GATEWAY__VERIFY__MAX_BODY_BYTES".to_owned(),
        "lots".to_owned(),
    )];
    let e = Config::from_toml("", "f.toml", &bad).expect_err("bad value");
    assert!(
        e.to_string()
            .contains("WBAUTH_GATEWAY__VERIFY__MAX_BODY_BYTES"),
        "{e}"
    );
}

#[test]
fn store_backends_are_chosen_by_url() {
    let config = |keys: &str, nonces: &str| {
        Config::from_toml(
            &format!("[store]\nkeys = {keys:?}\nnonces = {nonces:?}\n"),
            "g.toml",
            &[],
        )
    };
    let c = config("postgres://wb:pw@db/keys", "redis://cache:6379/2").expect("valid");
    assert_eq!(
        c.store.key_backend(),
        Ok(KeyBackend::Postgres("postgres://wb:pw@db/keys".into()))
    );
    assert_eq!(
        c.store.nonce_backend(),
        Ok(NonceBackend::Redis("redis://cache:6379/2".into()))
    );
    let c = config("sqlite", "postgresql://db/nonces").expect("valid");
    assert_eq!(c.store.key_backend(), Ok(KeyBackend::Sqlite));
    assert_eq!(
        c.store.nonce_backend(),
        Ok(NonceBackend::Postgres("postgresql://db/nonces".into()))
    );
    // Unknown stores are refused, and the message never shows a password.
    let e = config("mysql://root:hunter2@db/keys", "embedded")
        .expect_err("mysql refused")
        .to_string();
    assert!(
        e.contains("store.keys") && e.contains("mysql://root:***@db/keys"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
    let e = config("sqlite", "memcached://x")
        .expect_err("refused")
        .to_string();
    assert!(e.contains("store.nonces"), "{e}");
    let e = Config::from_toml("[listen]\nmax_connections = 0\n", "g.toml", &[])
        .expect_err("refused")
        .to_string();
    assert!(e.contains("listen.max_connections"), "{e}");
    let e = Config::from_toml("[store]\npool_size = 0\n", "g.toml", &[])
        .expect_err("refused")
        .to_string();
    assert!(e.contains("store.pool_size"), "{e}");
    let e = Config::from_toml("[store]\nop_timeout_ms = 0\n", "g.toml", &[])
        .expect_err("refused")
        .to_string();
    assert!(e.contains("store.op_timeout_ms"), "{e}");
}

#[test]
fn postgres_keys_need_shared_nonces_or_an_explicit_single_instance() {
    let config = |store: &str| Config::from_toml(&format!("[store]\n{store}"), "g.toml", &[]);
    for store in [
        "keys = \"postgres://wb:pw@db/keys\"\n",
        "keys = \"postgresql://db/keys\"\nnonces = \"embedded\"\n",
        "keys = \"postgres://db/keys\"\nallow_per_instance_nonces = false\n",
    ] {
        let e = config(store).expect_err(store).to_string();
        assert!(e.starts_with("g.toml: store.nonces: "), "{e}");
        assert!(
            e.contains("accepted again by another")
                && e.contains("redis://")
                && e.contains("allow_per_instance_nonces = true"),
            "{e}"
        );
        assert!(!e.contains("decision") && !e.contains("pw@"), "{e}");
    }
    // The same through the environment.
    let vars = vec![(
        "WBAUTH_GATEWAY__STORE__KEYS".to_owned(),
        "postgres://db/keys".to_owned(),
    )];
    let e = Config::from_toml("", "g.toml", &vars).expect_err("refused");
    assert!(e.to_string().contains("allow_per_instance_nonces"), "{e}");
    // Shared nonces, or the explicit choice of one instance, are accepted.
    for store in [
        "keys = \"postgres://db/keys\"\nnonces = \"redis://cache:6379/0\"\n",
        "keys = \"postgres://db/keys\"\nnonces = \"postgres://db/keys\"\n",
        "keys = \"postgres://db/keys\"\nallow_per_instance_nonces = true\n",
        "keys = \"sqlite\"\n",
    ] {
        let c = config(store).expect(store);
        assert_eq!(
            c.store.allow_per_instance_nonces,
            store.contains("allow_per_instance_nonces"),
            "{store}"
        );
    }
    assert!(!load("").expect("defaults").store.allow_per_instance_nonces);
}

#[test]
fn the_example_file_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../gateway.example.toml");
    let text = std::fs::read_to_string(path).expect("gateway.example.toml");
    let c = Config::from_toml(&text, "gateway.example.toml", &[]).expect("valid example");
    assert_eq!(
        (c.routes.len(), c.kinds.len(), c.fiat.routes.len()),
        (1, 2, 1)
    );
    // Copied as it is, the example turns on no rate limit; its commented line is valid.
    assert!(c.rate_limit.kinds.is_empty(), "{:?}", c.rate_limit.kinds);
    assert!(text.contains("\n# trade = "), "the commented rate limit");
    let uncommented = text.replace("\n# trade = ", "\ntrade = ");
    let limited = Config::from_toml(&uncommented, "gateway.example.toml", &[])
        .expect("the example with its rate limit uncommented");
    assert_eq!(limited.rate_limit.kinds["trade"].requests, 100);
    assert_eq!(c.console.listen, None);
    assert_eq!(c.console.link_ttl_ms, 86_400_000);
}

#[test]
fn console_links_are_checked() {
    for (toml, key) in [
        ("[console]\nlink_ttl_ms = 59999\n", "console.link_ttl_ms"),
        (
            "[console]\nlink_ttl_ms = 2592000001\n",
            "console.link_ttl_ms",
        ),
        (
            "[console]\npublic_url = \"console.example.com\"\n",
            "console.public_url",
        ),
        (
            "[console]\npublic_url = \"https://\"\n",
            "console.public_url",
        ),
        (
            "[console]\npublic_url = \"https://c.example?x=1\"\n",
            "console.public_url",
        ),
    ] {
        let e = Config::from_toml(toml, "g.toml", &[])
            .expect_err(toml)
            .to_string();
        assert!(e.contains(key), "{toml}: {e}");
    }
    let c = Config::from_toml(
        "[console]\npublic_url = \"https://console.example.com/\"\nlink_ttl_ms = 60000\n",
        "g.toml",
        &[],
    )
    .expect("valid");
    assert_eq!(
        c.console.public_url.as_deref(),
        Some("https://console.example.com/")
    );
}

#[test]
fn dangerous_names_cannot_be_listed() {
    for name in [
        "x_auth_account",
        "Authorization",
        "X-Original-URL",
        "X-Rewrite-URL",
        "X-HTTP-Method-Override",
        "X-Forwarded-Host",
        "Forwarded",
        "Transfer-Encoding",
        "X-TXC-SIGNATURE",
        "X-Auth-Key",
    ] {
        assert!(check_forward_header(name).is_err(), "{name}");
    }
    assert_eq!(
        check_forward_header("X-Request-Id")
            .expect("valid")
            .as_str(),
        "x-request-id"
    );
}

#[test]
fn failover_settings_need_the_store_that_uses_them() {
    let c = load(
        "[store]\nnonces = \"redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/0\"\n\
         nonce_replicas_ack = 1\n",
    )
    .expect("valid");
    assert_eq!(
        c.store.nonce_backend(),
        Ok(NonceBackend::Redis(
            "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/0".into()
        ))
    );
    assert_eq!(c.store.remote_options().nonce_replicas_ack, 1);
    let e = load("[store]\nnonces = \"postgres://db/n\"\nnonce_replicas_ack = 1\n")
        .expect_err("postgres does not WAIT");
    assert!(
        e.to_string().contains("only a Redis nonce store waits"),
        "{e}"
    );
    let e = load("[store]\nrequire_sync_standby = true\n").expect_err("no postgres");
    assert!(e.to_string().contains("neither store is PostgreSQL"), "{e}");
    let c = load("[store]\nnonces = \"postgres://db/n\"\nrequire_sync_standby = true\n")
        .expect("valid");
    assert!(c.store.remote_options().require_sync_standby);
}

#[test]
fn the_redis_ca_needs_a_rediss_nonce_store() {
    let c = load("[store]\nnonces = \"rediss://cache:6380/0\"\nredis_ca = \"ca.pem\"\n")
        .expect("valid");
    assert_eq!(
        c.store.remote_options().redis_ca,
        Some(std::path::PathBuf::from("ca.pem"))
    );
    for (toml, says) in [
        (
            "nonces = \"redis://cache:6379/0\"",
            "only a Redis nonce store over TLS",
        ),
        ("nonces = \"postgres://db/n\"", "sslrootcert=FILE"),
        (
            "nonces = \"redis+sentinel://s1:26379/m/0\"",
            "no TLS through Sentinel",
        ),
    ] {
        let e = load(&format!("[store]\n{toml}\nredis_ca = \"ca.pem\"\n")).expect_err(toml);
        assert!(e.to_string().contains(says), "{toml}: {e}");
    }
}
