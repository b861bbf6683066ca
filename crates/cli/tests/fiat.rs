//! Fiat Gateway routes through the real `wbauth serve`: tokens issued by `POST /api/v4/jwt`
//! open them (signature from the configured PEM key, audience, expiry on the test clock);
//! refusals answer 401 `Request authorization failed` with the reason of `decisions.md` 23.

#![cfg(feature = "test-clock")]

mod common;

use common::gateway::{Gateway, UPSTREAM_ANSWER, Upstream};
use common::{Answer, post};
use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::sign::sign_body;

const DEPOSIT: &str = "/api/v1/fiat/deposit";

fn refused(reason: &str) -> String {
    format!(
        r#"{{"code":0,"message":"Request authorization failed","errors":{{"token":["{reason}"]}}}}"#
    )
}

async fn fiat(gw: &Gateway, headers: &[(&str, &[u8])], body: &str) -> Answer {
    let mut all: Vec<(&str, &[u8])> = vec![("content-type", b"application/json")];
    all.extend_from_slice(headers);
    post(&format!("{}{DEPOSIT}", gw.base), &all, body.to_owned()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_tokens_open_fiat_routes() {
    let upstream = Upstream::start().await;
    let keys = tempfile::tempdir().expect("tempdir");
    let pem = keys.path().join("signing.pem");
    whitebit_gateway::tokens::SigningKey::generate_rs256()
        .expect("key")
        .write_pkcs8_pem_file(&pem)
        .expect("PEM written");
    let extra = format!(
        "[[kind]]\nname = \"fiat\"\npaths = [\"/api/v4/jwt\"]\n\n\
         [tokens]\nkeys = [{{ pem = \"{}\", kid = \"k1\" }}]\n\n\
         [[fiat.route]]\nprefix = \"/api/v1/fiat\"\nupstream = \"http://{}\"\n",
        pem.display(),
        upstream.addr
    );
    let gw = Gateway::start_with(&upstream, &extra).await;
    let (key, secret) = gw.provision_key("fa", "fiat", &[]).await;

    let jwt_body = r#"{"request":"/api/v4/jwt","nonce":1}"#;
    let signed = sign_body(
        jwt_body.as_bytes().to_vec(),
        &HmacSha512Key::new(secret.as_bytes()),
    );
    let issued = post(
        &format!("{}/api/v4/jwt", gw.base),
        &[
            ("x-txc-apikey", key.as_bytes()),
            ("x-txc-payload", signed.payload.as_bytes()),
            ("x-txc-signature", signed.signature.as_bytes()),
        ],
        jwt_body.to_owned(),
    )
    .await;
    assert_eq!(issued.status, 200, "{issued:?}");
    let answer: serde_json::Value = serde_json::from_str(&issued.body).expect("JSON");
    let token = answer["data"]["token"].as_str().expect("token").to_owned();
    let bearer = format!("Bearer {token}");

    let order = r#"{"currency":"UAH","amount":"1500.00","orderId":"o-1"}"#;
    let a = fiat(&gw, &[("authorization", bearer.as_bytes())], order).await;
    assert_eq!((a.status, a.body.as_str()), (200, UPSTREAM_ANSWER), "{a:?}");
    let seen = upstream.last();
    assert_eq!(seen.path, DEPOSIT);
    assert_eq!(seen.body, order.as_bytes());
    assert_eq!(
        seen.headers
            .get("x-auth-account")
            .and_then(|v| v.to_str().ok()),
        Some("fa")
    );
    assert!(
        seen.headers.get("authorization").is_none(),
        "the credential stays at the gateway"
    );
    // Without "Bearer " too.
    let a = fiat(&gw, &[("authorization", token.as_bytes())], order).await;
    assert_eq!(a.status, 200, "{a:?}");

    type Case<'a> = (Vec<(&'a str, &'a [u8])>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (vec![], "Token missing."),
        (vec![("authorization", b"Bearer ")], "Token missing."),
        (vec![("authorization", b"Bearer a.b")], "Malformed token."),
        (
            vec![(
                "authorization",
                b"Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.",
            )],
            "Algorithm not allowed.",
        ),
        // A partner request (x-auth-key) for a partner that does not exist.
        (
            vec![
                ("authorization", bearer.as_bytes()),
                ("x-auth-key", b"auth-nobody"),
            ],
            "Algorithm not allowed.",
        ),
    ];
    for (headers, reason) in &cases {
        let a = fiat(&gw, headers, order).await;
        assert_eq!(
            (a.status, a.body.clone()),
            (401, refused(reason)),
            "{headers:?}"
        );
    }
    // A tampered signature (a character in the middle, so the base64url stays canonical).
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() - 20;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered = format!("Bearer {}", chars.into_iter().collect::<String>());
    let a = fiat(&gw, &[("authorization", tampered.as_bytes())], order).await;
    assert_eq!(
        (a.status, a.body),
        (401, refused("Invalid token signature."))
    );
    // Expiry on the test clock (60 s lifetime, no leeway on exp).
    gw.advance(61_000).await;
    let a = fiat(&gw, &[("authorization", bearer.as_bytes())], order).await;
    assert_eq!((a.status, a.body), (401, refused("Token expired.")));
    assert_eq!(
        upstream.count(),
        2,
        "only the accepted requests reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_tokens_are_single_use_even_across_a_crash() {
    use whitebit_auth::fiat::OrderFields;
    use whitebit_client::{FiatCredentials, SecretString};

    let upstream = Upstream::start().await;
    let extra = format!(
        "[[fiat.route]]\nprefix = \"/api/v1/fiat\"\nupstream = \"http://{}\"\n",
        upstream.addr
    );
    let gw = Gateway::start_with(&upstream, &extra).await;
    let created = gw.ok(&["partners", "create", "acme"]);
    let field = |name: &str| {
        created
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name}= in {created}"))
            .to_owned()
    };
    let (auth_key, enc_key) = (field("auth_key"), field("enc_key"));
    let creds = FiatCredentials::new(auth_key.clone(), &SecretString::from(enc_key.clone()));
    let order = OrderFields {
        currency: "UAH",
        amount: "1500.00",
        order_id: "o-7",
    };
    let body = r#"{"currency":"UAH","amount":"1500.00","orderId":"o-7"}"#;
    let now = gw.advance(0).await;

    let token = creds.token_at(DEPOSIT, &order, now);
    let bearer = token.authorization();
    let send = |gw: &Gateway, bearer: String, body: &'static str| {
        let url = format!("{}{DEPOSIT}", gw.base);
        let auth_key = auth_key.clone();
        async move {
            post(
                &url,
                &[
                    ("content-type", b"application/json"),
                    ("authorization", bearer.as_bytes()),
                    ("x-auth-key", auth_key.as_bytes()),
                ],
                body.to_owned(),
            )
            .await
        }
    };
    let a = send(&gw, bearer.clone(), body).await;
    assert_eq!((a.status, a.body.as_str()), (200, UPSTREAM_ANSWER), "{a:?}");
    let seen = upstream.last();
    assert_eq!(
        seen.headers
            .get("x-auth-partner")
            .and_then(|v| v.to_str().ok()),
        Some(auth_key.as_str())
    );
    assert!(
        seen.headers.get("x-auth-key").is_none() && seen.headers.get("authorization").is_none()
    );
    let a = send(&gw, bearer.clone(), body).await;
    assert_eq!((a.status, a.body), (401, refused("Token already used.")));

    // Remembered across a kill -9.
    let gw = gw.kill9_and_restart(1, now + 1_000);
    let a = send(&gw, bearer.clone(), body).await;
    assert_eq!((a.status, a.body), (401, refused("Token already used.")));

    // Order checks, then expiry, then a disabled partner.
    let other = creds.token_at(
        DEPOSIT,
        &OrderFields {
            currency: "UAH",
            amount: "1.00",
            order_id: "o-7",
        },
        now + 1_000,
    );
    let a = send(&gw, other.authorization(), body).await;
    assert_eq!(
        (a.status, a.body),
        (401, refused("Order signature mismatch."))
    );
    let fresh = creds.token_at(DEPOSIT, &order, now + 1_000);
    let a = send(
        &gw,
        fresh.authorization(),
        r#"{"currency":"UAH","amount":"1500.00"}"#,
    )
    .await;
    assert_eq!((a.status, a.body), (401, refused("Order fields missing.")));
    let old = creds.token_at(DEPOSIT, &order, now - 61_000);
    let a = send(&gw, old.authorization(), body).await;
    assert_eq!((a.status, a.body), (401, refused("Token expired.")));
    gw.ok(&["partners", "disable", &auth_key]);
    let a = send(
        &gw,
        creds.token_at(DEPOSIT, &order, now + 1_000).authorization(),
        body,
    )
    .await;
    assert_eq!(
        (a.status, a.body),
        (401, refused("Invalid token signature."))
    );
    assert_eq!(
        upstream.count(),
        1,
        "only the first request reached the upstream"
    );
    assert!(!gw.stderr_text().contains(&enc_key));
}
