//! The nonce rules: window edges at ±5 s on the server's clock, uniqueness within the window,
//! strict ordering, and a refused request consuming nothing.

use whitebit_auth::ApiError;

use crate::Group;
use crate::report::{CaseReport, Expect};
use crate::target::Session;
use crate::wire::{Fields, signed};

pub(crate) fn run(session: &Session<'_>, out: &mut Vec<CaseReport>) {
    let target = session.target;
    let url = target.url_path(&target.path);
    let send_fields =
        |id: &str, rule: String, fields: Fields, expect: Expect, out: &mut Vec<CaseReport>| {
            let request = signed(&url, fields.text().as_bytes(), &target.credentials);
            let answer = session.send(&request);
            out.push(CaseReport::checked(
                format!("nonces.{id}"),
                Group::Nonces,
                rule,
                &request,
                &expect,
                &answer,
            ));
            answer.is_ok_and(|a| (200..300).contains(&a.status))
        };
    let clock = if session.clock_known {
        "the server's clock"
    } else {
        "this machine's clock (the server does not answer GET /api/v4/public/time)"
    };

    // Window edges. The server's clock is known to about half a second, so "inside" is 2.5 s
    // off and "outside" 8 s off: a ±5 s window passes all four, even with a request delayed
    // by two seconds; a window of ±8 s or more, or of ±2.5 s or less, fails one.
    let edges: [(&str, i64, Option<ApiError>); 4] = [
        ("window-inside-past", -2_500, None),
        ("window-inside-future", 2_500, None),
        ("window-outside-past", -8_000, Some(ApiError::NonceTooOld)),
        ("window-outside-future", 8_000, Some(ApiError::NonceTooNew)),
    ];
    for (id, offset, refused) in edges {
        let now = i64::try_from(session.now_ms()).unwrap_or(i64::MAX);
        let nonce = u64::try_from(now.saturating_add(offset)).unwrap_or(0);
        let (expect, verdict) = match refused {
            Some(e) => (Expect::error(e), format!("refused at row {}", e.row())),
            None => (Expect::accepted(), "accepted".to_owned()),
        };
        let rule = format!(
            "row 16a: a window nonce {:+.1} s from {clock} is {verdict}",
            offset as f64 / 1000.0
        );
        let accepted = send_fields(id, rule, Fields::window(&target.path, nonce), expect, out);
        if accepted {
            session.observe(nonce);
        }
    }

    // Uniqueness: the same window nonce twice, the second with another body.
    let nonce = session.next_nonce();
    let first = send_fields(
        "window-unique-first",
        "row 16b: a fresh window nonce is accepted".into(),
        Fields::window(&target.path, nonce),
        Expect::accepted(),
        out,
    );
    if first {
        let mut again = Fields::window(&target.path, nonce);
        again.set("ticker", "\"BTC\"");
        let _ = send_fields(
            "window-unique-again",
            "row 16b: the same window nonce again (another body) is refused".into(),
            again,
            Expect::error(ApiError::NonceReused),
            out,
        );
    }

    // Strict mode: increasing only.
    let strict = session.next_strict_nonce();
    let first = send_fields(
        "strict-first",
        "row 16c: a strict nonce above every earlier one is accepted".into(),
        Fields::strict(&target.path, strict),
        Expect::accepted(),
        out,
    );
    if first {
        let _ = send_fields(
            "strict-equal",
            "row 16c: the same strict nonce again is refused".into(),
            Fields::strict(&target.path, strict),
            Expect::error(ApiError::NonceNotIncreasing),
            out,
        );
        let _ = send_fields(
            "strict-lower",
            "row 16c: a lower strict nonce is refused".into(),
            Fields::strict(&target.path, strict - 1),
            Expect::error(ApiError::NonceNotIncreasing),
            out,
        );
        let _ = send_fields(
            "strict-after",
            "row 16c: the next strict nonce is accepted".into(),
            Fields::strict(&target.path, session.next_strict_nonce()),
            Expect::accepted(),
            out,
        );
    }

    // A refused request consumes nothing: a wrong signature with nonce N, then N signed right.
    let nonce = session.next_nonce();
    let body = Fields::window(&target.path, nonce).text();
    let mut wrong = signed(&url, body.as_bytes(), &target.credentials);
    wrong.set_header("X-TXC-SIGNATURE", &"0".repeat(128));
    let answer = session.send(&wrong);
    out.push(CaseReport::checked(
        "nonces.refused-consumes-nothing-1",
        Group::Nonces,
        "a refused request (row 12) with nonce N",
        &wrong,
        &Expect::error(ApiError::Unauthorized),
        &answer,
    ));
    let right = signed(&url, body.as_bytes(), &target.credentials);
    let answer = session.send(&right);
    out.push(CaseReport::checked(
        "nonces.refused-consumes-nothing-2",
        Group::Nonces,
        "then N signed right is accepted: the refusal consumed nothing",
        &right,
        &Expect::accepted(),
        &answer,
    ));
}
