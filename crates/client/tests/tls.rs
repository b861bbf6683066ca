//! HTTPS: a server whose certificate a private CA issued is reached once the CA is given
//! ([`ClientBuilder::root_certificates_pem`]), over HTTP/2 when the server offers it; an
//! unknown issuer, a wrong host name and an expired certificate are refused before anything
//! is sent, with the reason in the error; a bundle that is not PEM fails `build`.

use serde_json::{Value, json};
use wbauth_testkit::{TestCa, TlsEcho};
use whitebit_client::{Client, ClientBuilder, Error};

fn builder(url: &str) -> ClientBuilder {
    Client::builder()
        .credentials("tls-test-key", "tls-test-secret")
        .base_url(url.to_owned())
}

/// The whole chain of causes of an error, as one line.
fn causes(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn a_private_ca_is_trusted_when_given_and_http2_is_used() {
    let ca = TestCa::new("wbauth test CA").expect("CA");
    let server = TlsEcho::start(&ca.server_cert(&["localhost", "127.0.0.1"]).expect("cert"))
        .await
        .expect("server");
    for host in ["localhost", "127.0.0.1"] {
        let client = builder(&server.url(host))
            .root_certificates_pem(ca.pem())
            .build()
            .expect("client");
        let seen: Value = client
            .post("/api/v4/trade-account/balance", json!({"ticker": "BTC"}))
            .await
            .expect("answered");
        assert_eq!(seen["version"], "HTTP/2.0", "{seen}");
        assert_eq!(seen["path"], "/api/v4/trade-account/balance", "{seen}");
        assert_eq!(seen["api_key"], "tls-test-key", "{seen}");
    }
}

#[tokio::test]
async fn unknown_issuers_wrong_names_and_expired_certificates_are_refused() {
    let ca = TestCa::new("wbauth test CA").expect("CA");
    let other_ca = TestCa::new("another CA").expect("CA");
    let good = TlsEcho::start(&ca.server_cert(&["localhost"]).expect("cert"))
        .await
        .expect("server");
    let wrong_name = TlsEcho::start(&ca.server_cert(&["api.example.test"]).expect("cert"))
        .await
        .expect("server");
    let expired = TlsEcho::start(&ca.expired_server_cert(&["localhost"]).expect("cert"))
        .await
        .expect("server");
    let cases = [
        (&good, other_ca.pem(), "UnknownIssuer"),
        (&wrong_name, ca.pem(), "not valid for name"),
        (&expired, ca.pem(), "certificate expired"),
    ];
    for (server, roots, reason) in cases {
        let client = builder(&server.url("localhost"))
            .root_certificates_pem(roots)
            .build()
            .expect("client");
        let e = client
            .post("/api/v4/trade-account/balance", json!({}))
            .await
            .expect_err("refused");
        assert!(matches!(e, Error::Transport(_)), "{e:?}");
        let text = causes(&e);
        assert!(text.contains(reason), "{reason}: {text}");
    }
    // Without the CA, the system's roots do not know it either.
    let client = builder(&good.url("localhost")).build().expect("client");
    let e = client
        .post("/api/v4/trade-account/balance", json!({}))
        .await
        .expect_err("refused");
    assert!(causes(&e).contains("UnknownIssuer"), "{}", causes(&e));
}

#[test]
fn a_bundle_without_certificates_fails_build() {
    for pem in [
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    ] {
        match builder("https://localhost:1")
            .root_certificates_pem(pem)
            .build()
        {
            Err(Error::Config(message)) => {
                assert!(message.contains("root certificates"), "{message}");
            }
            other => panic!("{pem:?}: {other:?}"),
        }
    }
    let http = reqwest::Client::new();
    let ca = TestCa::new("wbauth test CA").expect("CA");
    match builder("https://localhost:1")
        .http_client(http)
        .root_certificates_pem(ca.pem())
        .build()
    {
        Err(Error::Config(message)) => assert!(message.contains("http_client"), "{message}"),
        other => panic!("{other:?}"),
    }
}
