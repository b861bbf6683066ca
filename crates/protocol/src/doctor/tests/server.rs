//! What only a server knows (headers, keys, the last nonce, its body-match policy), and the
//! one-line hints.

use super::*;

#[test]
fn what_a_server_knows_is_explained() {
    let valid = Case::valid();
    let unknown = Case {
        secret: None,
        key: Some(KeyFacts {
            sent: "typo-key",
            known: false,
            example: Some("demo-key"),
        }),
        ..valid.clone()
    }
    .run();
    let message = &get(&unknown, code::KEY_UNKNOWN).message;
    assert!(
        message.contains("`typo-key`") && message.contains("`demo-key`"),
        "{message}"
    );
    assert_eq!(refused_at(&unknown), Some("12"));

    let behind = Case {
        last_nonce: Some(NOW + 1500),
        ..Case::signed(&strict_body(&NOW.to_string()))
    }
    .run();
    let message = &get(&behind, code::NONCE_NOT_INCREASING).message;
    assert!(
        message.contains(&NOW.to_string()) && message.contains(&(NOW + 1500).to_string()),
        "{message}"
    );
    assert!(message.contains("1500 behind"), "{message}");
    // Window mode has no high-water mark.
    let window = Case {
        last_nonce: Some(NOW + 1500),
        ..valid.clone()
    }
    .run();
    assert!(!has(&window, code::NONCE_NOT_INCREASING));

    // fetch joins a header set twice into one value.
    let joined = Case {
        headers: Some(vec![("x-txc-signature", b"ab, ab")]),
        ..valid.clone()
    }
    .run();
    assert!(
        get(&joined, code::HEADER_REPEATED)
            .message
            .contains("joined")
    );

    // A known key, a JSON content type with parameters, single headers: nothing to say.
    let fine = Case {
        headers: Some(vec![
            ("Content-Type", b"Application/JSON; charset=utf-8"),
            ("X-TXC-APIKEY", b"k"),
        ]),
        key: Some(KeyFacts {
            sent: "k",
            known: true,
            example: None,
        }),
        last_nonce: Some(NOW - 1),
        ..valid.clone()
    }
    .run();
    assert_eq!(problem_codes(&fine), Vec::<&str>::new());

    // Under body_match = "json" a re-serialised body is a note, not a problem.
    let spaced =
        format!(r#"{{"request": "{PATH}", "nonce": {NOW}, "nonceWindow": true, "ticker": "BTC"}}"#);
    let json = Case {
        body_match: crate::verify::BodyMatch::Json,
        ..valid.clone().with_body(&spaced)
    }
    .run();
    assert_eq!(problem_codes(&json), Vec::<&str>::new());
    assert!(has(&json, code::PAYLOAD_BODY_SAME_JSON));
}

#[test]
fn every_problem_has_an_ascii_hint() {
    for c in code::ALL {
        if let Some(hint) = code::hint(c) {
            assert!(
                hint.is_ascii() && !hint.contains('\n') && hint.len() <= 100,
                "{c}: {hint}"
            );
        } else {
            assert!(
                code::row(c).is_none(),
                "{c} refuses a request but has no hint"
            );
        }
    }
}
