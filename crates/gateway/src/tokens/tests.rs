use std::io;
use std::path::Path;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED, ED25519, KeyPair as _, RSA_PKCS1_2048_8192_SHA256,
    UnparsedPublicKey,
};
use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use whitebit_auth::{JwtEndpointError, TokenRejection};

use super::jwk::PublicParams;
use super::jwk::{der_take, rsa_public_key_components, thumbprint};
use super::keys::PrivateKey;
use super::*;

const NOW_MS: u64 = 1_700_000_000_123;

fn rsa_key() -> SigningKey {
    SigningKey::generate_rs256().expect("generate RSA key")
}

fn issuer_with(keys: Vec<SigningKey>) -> TokenIssuer {
    TokenIssuer::new("wbauth", "fiat-gateway", keys).expect("issuer")
}

fn b64d(part: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(part).expect("base64url")
}

fn parts(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

/// Re-signs `header.claims` (JSON texts) with `key`.
fn forge(key: &SigningKey, header: &str, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let sig = key.sign(input.as_bytes()).expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn standard_claims(iat: u64, exp: u64) -> String {
    format!(
        r#"{{"iss":"wbauth","sub":"alice","aud":"fiat-gateway","iat":{iat},"exp":{exp},"jti":"00"}}"#
    )
}

fn header_for(key: &SigningKey) -> String {
    format!(
        r#"{{"alg":"{}","typ":"JWT","kid":"{}"}}"#,
        key.algorithm().name(),
        key.kid()
    )
}

fn jwks_keys(jwks: &str) -> Vec<serde_json::Value> {
    let doc: serde_json::Value = serde_json::from_str(jwks).expect("JWKS is JSON");
    doc["keys"].as_array().expect("keys array").clone()
}

#[test]
fn issue_then_verify_round_trip() {
    let key = rsa_key();
    let issuer = issuer_with(vec![key.clone()]);
    let issued = issuer.issue("alice", NOW_MS).expect("issue");
    assert_eq!(issued.expires_at_s, (NOW_MS + 60_000) / 1000);
    assert_eq!(issued.jti.len(), 32);

    let p = parts(&issued.token);
    assert_eq!(p.len(), 3);
    let header: serde_json::Value = serde_json::from_slice(&b64d(&p[0])).expect("header");
    assert_eq!(
        header,
        serde_json::json!({"alg":"RS256","typ":"JWT","kid":key.kid()})
    );
    let claims: serde_json::Value = serde_json::from_slice(&b64d(&p[1])).expect("claims");
    assert_eq!(claims["iss"], "wbauth");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], "fiat-gateway");
    assert_eq!(claims["iat"], NOW_MS / 1000);
    assert_eq!(claims["exp"], issued.expires_at_s);
    assert_eq!(claims["jti"], issued.jti.as_str());
    assert_eq!(b64d(&p[2]).len(), 256);

    let expected = VerifiedIssuedToken {
        subject: "alice".to_owned(),
        jti: issued.jti.clone(),
        expires_at_s: issued.expires_at_s,
        key: None,
        key_id: None,
    };
    let bearer = format!("Bearer {}", issued.token);
    assert_eq!(issuer.verify(&[&bearer], NOW_MS), Ok(expected.clone()));
    assert_eq!(issuer.verify(&[&issued.token], NOW_MS), Ok(expected));

    // jti values differ between tokens.
    let again = issuer.issue("alice", NOW_MS).expect("issue");
    assert_ne!(again.jti, issued.jti);

    // A token for an API key names it.
    let api_key = TokenKey {
        public_key: "pk-\"1\"",
        id: 42,
    };
    let for_key = issuer
        .issue_for_key("alice", api_key, NOW_MS)
        .expect("issue");
    let claims: serde_json::Value =
        serde_json::from_slice(&b64d(&parts(&for_key.token)[1])).expect("claims");
    assert_eq!(
        (claims["key"].as_str(), claims["key_id"].as_u64()),
        (Some("pk-\"1\""), Some(42))
    );
    let verified = issuer.verify(&[&for_key.token], NOW_MS).expect("verify");
    assert_eq!(
        (verified.key.as_deref(), verified.key_id),
        (Some("pk-\"1\""), Some(42))
    );
    for (name, value) in [
        ("key", "7"),
        ("key_id", "\"7\""),
        ("key_id", "-1"),
        ("key_id", "1.5"),
    ] {
        let forged = forge(
            &key,
            &header_for(&key),
            &format!(
                r#"{{"iss":"wbauth","sub":"alice","aud":"fiat-gateway","iat":{},"exp":{},"jti":"00","{name}":{value}}}"#,
                NOW_MS / 1000,
                NOW_MS / 1000 + 60
            ),
        );
        assert_eq!(
            issuer.verify(&[&forged], NOW_MS),
            Err(TokenRejection::Malformed),
            "{name} = {value}"
        );
    }

    let body: serde_json::Value = serde_json::from_str(&issued.response_body()).expect("body JSON");
    assert_eq!(body["data"]["token"], issued.token.as_str());
    assert_eq!(body["data"]["expires_at"], issued.expires_at_s);
}

#[test]
fn missing_or_several_authorization_values() {
    let issuer = issuer_with(vec![rsa_key()]);
    let issued = issuer.issue("alice", NOW_MS).expect("issue");
    assert_eq!(issuer.verify(&[], NOW_MS), Err(TokenRejection::Missing));
    assert_eq!(
        issuer.verify(&[&issued.token, &issued.token], NOW_MS),
        Err(TokenRejection::Missing)
    );
    assert_eq!(issuer.verify(&["  "], NOW_MS), Err(TokenRejection::Missing));
    assert_eq!(
        issuer.verify(&["a.b"], NOW_MS),
        Err(TokenRejection::Malformed)
    );
}

#[test]
fn expiry_has_no_leeway() {
    let issuer = issuer_with(vec![rsa_key()]);
    let issued = issuer.issue("alice", NOW_MS).expect("issue");
    let exp_ms = issued.expires_at_s * 1000;
    assert!(issuer.verify(&[&issued.token], exp_ms - 1).is_ok());
    assert_eq!(
        issuer.verify(&[&issued.token], exp_ms),
        Err(TokenRejection::Expired)
    );
    assert_eq!(
        issuer.verify(&[&issued.token], exp_ms + 3_600_000),
        Err(TokenRejection::Expired)
    );
}

#[test]
fn lifetime_is_configurable_and_bounded() {
    let issuer = issuer_with(vec![rsa_key()]).with_lifetime_ms(10);
    assert_eq!(issuer.lifetime_ms(), MIN_LIFETIME_MS);
    let issued = issuer.issue("alice", 5_000_999).expect("issue");
    assert_eq!(issued.expires_at_s, 5_001);
    assert!(issuer.verify(&[&issued.token], 5_000_999).is_ok());
}

#[test]
fn iat_in_the_future_and_bad_times() {
    let key = rsa_key();
    let issuer = issuer_with(vec![key.clone()]);
    let now_s = NOW_MS / 1000;
    // Within the 5 s leeway.
    let ok = forge(
        &key,
        &header_for(&key),
        &standard_claims(now_s + 5, now_s + 60),
    );
    assert!(issuer.verify(&[&ok], NOW_MS).is_ok());
    let future = forge(
        &key,
        &header_for(&key),
        &standard_claims(now_s + 6, now_s + 60),
    );
    assert_eq!(
        issuer.verify(&[&future], NOW_MS),
        Err(TokenRejection::IssuedInFuture)
    );
    let inverted = forge(&key, &header_for(&key), &standard_claims(now_s, now_s));
    assert_eq!(
        issuer.verify(&[&inverted], NOW_MS),
        Err(TokenRejection::InvalidTimes)
    );
    let fractional = forge(
        &key,
        &header_for(&key),
        r#"{"iss":"wbauth","sub":"alice","aud":"fiat-gateway","iat":1.5,"exp":9999999999,"jti":"00"}"#,
    );
    assert_eq!(
        issuer.verify(&[&fractional], NOW_MS),
        Err(TokenRejection::InvalidTimes)
    );
    let text_exp = forge(
        &key,
        &header_for(&key),
        r#"{"iss":"wbauth","sub":"alice","aud":"fiat-gateway","iat":1,"exp":"9999999999","jti":"00"}"#,
    );
    assert_eq!(
        issuer.verify(&[&text_exp], NOW_MS),
        Err(TokenRejection::InvalidTimes)
    );
}

#[test]
fn wrong_audience_or_issuer() {
    let key = rsa_key();
    let issuer = issuer_with(vec![key.clone()]);
    let other_aud = TokenIssuer::new("wbauth", "elsewhere", vec![key.clone()]).expect("issuer");
    let token = other_aud.issue("alice", NOW_MS).expect("issue").token;
    assert_eq!(
        issuer.verify(&[&token], NOW_MS),
        Err(TokenRejection::InvalidAudience)
    );
    let other_iss = TokenIssuer::new("someone", "fiat-gateway", vec![key.clone()]).expect("issuer");
    let token = other_iss.issue("alice", NOW_MS).expect("issue").token;
    assert_eq!(
        issuer.verify(&[&token], NOW_MS),
        Err(TokenRejection::InvalidSignature)
    );

    let now_s = NOW_MS / 1000;
    let claims_with_aud = |aud: &str| {
        format!(
            r#"{{"iss":"wbauth","sub":"alice","aud":{aud},"iat":{now_s},"exp":{},"jti":"00"}}"#,
            now_s + 60
        )
    };
    let array = forge(
        &key,
        &header_for(&key),
        &claims_with_aud(r#"["other","fiat-gateway"]"#),
    );
    assert!(issuer.verify(&[&array], NOW_MS).is_ok());
    for bad in [r#"["other"]"#, "[]", "null", "1", r#""FIAT-GATEWAY""#] {
        let token = forge(&key, &header_for(&key), &claims_with_aud(bad));
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::InvalidAudience),
            "aud {bad}"
        );
    }
}

#[test]
fn malformed_claims() {
    let key = rsa_key();
    let issuer = issuer_with(vec![key.clone()]);
    let now_s = NOW_MS / 1000;
    let full = standard_claims(now_s, now_s + 60);
    for name in ["iss", "sub", "aud", "iat", "exp", "jti"] {
        let mut value: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&full).expect("claims");
        value.remove(name);
        let claims = serde_json::to_string(&value).expect("json");
        let token = forge(&key, &header_for(&key), &claims);
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::Malformed),
            "without {name}"
        );
    }
    let duplicate = full.replacen("{", r#"{"sub":"mallory","#, 1);
    let token = forge(&key, &header_for(&key), &duplicate);
    assert_eq!(
        issuer.verify(&[&token], NOW_MS),
        Err(TokenRejection::Malformed)
    );
    let not_object = forge(&key, &header_for(&key), "[1]");
    assert_eq!(
        issuer.verify(&[&not_object], NOW_MS),
        Err(TokenRejection::Malformed)
    );
    let crit = forge(
        &key,
        &format!(
            r#"{{"alg":"RS256","kid":"{}","crit":["exp"],"exp":1}}"#,
            key.kid()
        ),
        &full,
    );
    assert_eq!(
        issuer.verify(&[&crit], NOW_MS),
        Err(TokenRejection::Malformed)
    );
}

#[test]
fn tampering_is_detected() {
    let key = rsa_key();
    let issuer = issuer_with(vec![key.clone()]);
    let issued = issuer.issue("alice", NOW_MS).expect("issue");
    let p = parts(&issued.token);

    // Claims changed (subject swapped), original signature kept.
    let claims = String::from_utf8(b64d(&p[1]))
        .expect("utf8")
        .replace("\"alice\"", "\"mallory\"");
    let token = format!("{}.{}.{}", p[0], URL_SAFE_NO_PAD.encode(claims), p[2]);
    assert_eq!(
        issuer.verify(&[&token], NOW_MS),
        Err(TokenRejection::InvalidSignature)
    );

    // Header changed but still valid (extra member), original signature kept.
    let header = String::from_utf8(b64d(&p[0]))
        .expect("utf8")
        .replace("\"typ\":\"JWT\"", "\"typ\":\"jwt\"");
    let token = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(header), p[1], p[2]);
    assert_eq!(
        issuer.verify(&[&token], NOW_MS),
        Err(TokenRejection::InvalidSignature)
    );

    // One signature bit flipped.
    let mut sig = b64d(&p[2]);
    sig[17] ^= 0x01;
    let token = format!("{}.{}.{}", p[0], p[1], URL_SAFE_NO_PAD.encode(&sig));
    assert_eq!(
        issuer.verify(&[&token], NOW_MS),
        Err(TokenRejection::InvalidSignature)
    );

    // Truncated and empty signatures.
    let token = format!("{}.{}.{}", p[0], p[1], URL_SAFE_NO_PAD.encode(&sig[..255]));
    assert_eq!(
        issuer.verify(&[&token], NOW_MS),
        Err(TokenRejection::InvalidSignature)
    );
    let token = format!("{}.{}.", p[0], p[1]);
    assert_eq!(
        issuer.verify(&[&token], NOW_MS),
        Err(TokenRejection::InvalidSignature)
    );

    // Padding or non-base64url characters are not strict compact JWS.
    let token = format!("{}.{}.{}=", p[0], p[1], p[2]);
    assert_eq!(
        issuer.verify(&[&token], NOW_MS),
        Err(TokenRejection::Malformed)
    );
    // Header not a JSON object.
    let token = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("[]"), p[1], p[2]);
    assert_eq!(
        issuer.verify(&[&token], NOW_MS),
        Err(TokenRejection::Malformed)
    );
}

#[test]
fn algorithm_confusion_is_refused() {
    let key = rsa_key();
    let issuer = issuer_with(vec![key.clone()]);
    let now_s = NOW_MS / 1000;
    let claims = standard_claims(now_s, now_s + 60);
    let encode = |header: &str| {
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(&claims)
        )
    };

    // alg none, with and without a signature, with and without a known kid.
    for header in [
        format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, key.kid()),
        r#"{"alg":"none"}"#.to_owned(),
        format!(r#"{{"alg":"None","kid":"{}"}}"#, key.kid()),
    ] {
        let input = encode(&header);
        for token in [format!("{input}."), format!("{input}.AAAA")] {
            assert_eq!(
                issuer.verify(&[&token], NOW_MS),
                Err(TokenRejection::AlgorithmNotAllowed),
                "{header}"
            );
        }
    }
    // alg missing or not a string.
    for header in [
        format!(r#"{{"kid":"{}"}}"#, key.kid()),
        format!(r#"{{"alg":null,"kid":"{}"}}"#, key.kid()),
    ] {
        let token = format!("{}.AAAA", encode(&header));
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::AlgorithmNotAllowed)
        );
    }

    // HS256 with the RSA public key (both the DER and the JWKS text) as the HMAC secret.
    let public_der = match &key.material.private {
        PrivateKey::Rsa(pair) => pair.public_key().as_ref().to_vec(),
        _ => unreachable!("RSA key"),
    };
    let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, key.kid());
    let input = encode(&header);
    for secret in [
        public_der,
        issuer.jwks().into_bytes(),
        key.public_jwk().into_bytes(),
    ] {
        let mac = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &secret),
            input.as_bytes(),
        );
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::AlgorithmNotAllowed)
        );
    }

    // An algorithm another configured key uses, but not the one named by kid.
    let ec = SigningKey::generate_es256().expect("EC key");
    let mixed = issuer_with(vec![key.clone(), ec.clone()]);
    let header = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{}"}}"#, key.kid());
    let token = forge(&ec, &header, &claims);
    assert_eq!(
        mixed.verify(&[&token], NOW_MS),
        Err(TokenRejection::AlgorithmNotAllowed)
    );
    // And the RS256 key's real signature under an ES256 header.
    let header = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{}"}}"#, key.kid());
    let token = forge(&key, &header, &claims);
    assert_eq!(
        mixed.verify(&[&token], NOW_MS),
        Err(TokenRejection::AlgorithmNotAllowed)
    );
}

#[test]
fn unknown_or_missing_kid() {
    let key = rsa_key();
    let stranger = rsa_key();
    let issuer = issuer_with(vec![key.clone()]);
    let now_s = NOW_MS / 1000;
    let claims = standard_claims(now_s, now_s + 60);
    // Signed by a key this issuer does not have.
    let token = forge(&stranger, &header_for(&stranger), &claims);
    assert_eq!(
        issuer.verify(&[&token], NOW_MS),
        Err(TokenRejection::InvalidSignature)
    );
    // Signed by a key this issuer has, but no kid.
    let token = forge(&key, r#"{"alg":"RS256","typ":"JWT"}"#, &claims);
    assert_eq!(
        issuer.verify(&[&token], NOW_MS),
        Err(TokenRejection::InvalidSignature)
    );
    // Another key's signature under our kid.
    let token = forge(&stranger, &header_for(&key), &claims);
    assert_eq!(
        issuer.verify(&[&token], NOW_MS),
        Err(TokenRejection::InvalidSignature)
    );
}

#[test]
fn rotation() {
    let old = rsa_key();
    let new = rsa_key();
    assert_ne!(old.kid(), new.kid());
    let before = issuer_with(vec![old.clone()]);
    let old_token = before.issue("alice", NOW_MS).expect("issue").token;

    let mut rotated = before.clone();
    rotated.push_key(new.clone()).expect("push");
    assert_eq!(rotated.current_key().map(SigningKey::kid), Some(new.kid()));
    let new_token = rotated.issue("alice", NOW_MS).expect("issue").token;
    let header: serde_json::Value =
        serde_json::from_slice(&b64d(&parts(&new_token)[0])).expect("header");
    assert_eq!(header["kid"], new.kid());
    assert!(rotated.verify(&[&old_token], NOW_MS).is_ok());
    assert!(rotated.verify(&[&new_token], NOW_MS).is_ok());
    let kids: Vec<String> = jwks_keys(&rotated.jwks())
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect();
    assert_eq!(kids, [old.kid(), new.kid()]);

    assert!(rotated.remove_key(old.kid()).is_some());
    assert_eq!(
        rotated.verify(&[&old_token], NOW_MS),
        Err(TokenRejection::InvalidSignature)
    );
    assert!(rotated.verify(&[&new_token], NOW_MS).is_ok());
    assert_eq!(jwks_keys(&rotated.jwks()).len(), 1);

    // Duplicate kids are refused.
    let mut dup = issuer_with(vec![new.clone()]);
    assert!(matches!(
        dup.push_key(new.clone()),
        Err(KeyError::DuplicateKid(_))
    ));
    let renamed = old.with_kid(Some(new.kid())).expect("kid");
    assert!(matches!(
        TokenIssuer::new("i", "a", vec![new, renamed]),
        Err(KeyError::DuplicateKid(_))
    ));
}

#[test]
fn no_key_is_a_configuration_error() {
    let issuer = issuer_with(Vec::new());
    assert_eq!(issuer.issue("alice", NOW_MS), Err(TokenError::NoUsableKey));
    assert_eq!(
        JwtEndpointError::from(TokenError::NoUsableKey),
        JwtEndpointError::ServerConfiguration
    );
    assert_eq!(issuer.jwks(), r#"{"keys":[]}"#);
    let token = issuer_with(vec![rsa_key()])
        .issue("alice", NOW_MS)
        .expect("issue")
        .token;
    assert_eq!(
        issuer.verify(&[&token], NOW_MS),
        Err(TokenRejection::AlgorithmNotAllowed)
    );
}

#[test]
fn pem_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jwt.pem");
    let key = rsa_key();
    key.write_pkcs8_pem_file(&path).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(text.lines().all(|l| l.len() <= 64));
    // Never overwritten.
    match key.write_pkcs8_pem_file(&path) {
        Err(KeyError::Io { source, .. }) => {
            assert_eq!(source.kind(), io::ErrorKind::AlreadyExists);
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }

    let loaded = SigningKey::load_pem_file(&path).expect("load");
    assert_eq!(loaded.kid(), key.kid());
    assert_eq!(loaded.algorithm(), Algorithm::Rs256);
    assert_eq!(loaded.public_jwk(), key.public_jwk());
    assert_eq!(
        issuer_with(vec![loaded.clone()]).jwks(),
        issuer_with(vec![key.clone()]).jwks()
    );
    // A token signed by the loaded key verifies with the original and vice versa.
    let token = issuer_with(vec![loaded])
        .issue("alice", NOW_MS)
        .expect("issue");
    assert!(
        issuer_with(vec![key.clone()])
            .verify(&[&token.token], NOW_MS)
            .is_ok()
    );

    // Configured kid.
    let named = SigningKey::load_pem_file(&path)
        .expect("load")
        .with_kid(Some("2025-01"))
        .expect("kid");
    assert_eq!(named.kid(), "2025-01");
    assert_eq!(named.thumbprint(), key.kid());
    assert!(matches!(
        named.clone().with_kid(Some("")),
        Err(KeyError::EmptyKid)
    ));
    assert_eq!(named.clone().with_kid(None).expect("kid").kid(), "2025-01");
}

#[test]
fn pem_variants_and_errors() {
    let key = rsa_key();
    let pem = key.to_pkcs8_pem().expect("pem");
    // CRLF line endings and surrounding text are fine.
    let crlf = format!("comment\r\n{}", pem.replace('\n', "\r\n"));
    assert_eq!(SigningKey::from_pem(&crlf).expect("crlf").kid(), key.kid());

    // PKCS#1 "RSA PRIVATE KEY": the RSAPrivateKey inside the PKCS#8 PrivateKeyInfo.
    let pkcs8 = match &key.material.private {
        PrivateKey::Rsa(pair) => {
            let der: Pkcs8V1Der<'static> = pair.as_der().expect("der");
            der.as_ref().to_vec()
        }
        _ => unreachable!("RSA key"),
    };
    let (info, _) = der_take(&pkcs8, 0x30).expect("PrivateKeyInfo");
    let (_, rest) = der_take(info, 0x02).expect("version");
    let (_, rest) = der_take(rest, 0x30).expect("algorithm");
    let (pkcs1, _) = der_take(rest, 0x04).expect("privateKey");
    let pkcs1_pem = format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
        STANDARD.encode(pkcs1)
    );
    assert_eq!(
        SigningKey::from_pem(&pkcs1_pem).expect("pkcs1").kid(),
        key.kid()
    );

    for (text, what) in [
        ("", "empty"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "no key",
        ),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n", "unterminated"),
        (
            "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
            "bad base64",
        ),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "encrypted",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            "legacy encrypted",
        ),
    ] {
        assert!(
            matches!(SigningKey::from_pem(text), Err(KeyError::Pem(_))),
            "{what}"
        );
    }
    let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert!(matches!(
        SigningKey::from_pem(garbage),
        Err(KeyError::Unsupported)
    ));
    let twice = format!("{}{}", pem.as_str(), pem.as_str());
    assert!(matches!(
        SigningKey::from_pem(&twice),
        Err(KeyError::Pem(_))
    ));
    let missing = SigningKey::load_pem_file(Path::new("/nonexistent/wbauth-jwt.pem"));
    assert!(matches!(missing, Err(KeyError::Io { .. })));
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let key = rsa_key();
    let pem = key.to_pkcs8_pem().expect("pem");
    let body: String = pem.lines().nth(3).expect("a base64 line").to_owned();
    let debug = format!("{key:?}");
    assert!(debug.contains("<redacted>"));
    assert!(debug.contains(key.kid()));
    assert!(!debug.contains(&body));
    let issuer = issuer_with(vec![key]);
    assert!(!format!("{issuer:?}").contains(&body));
    let issued = issuer.issue("alice", NOW_MS).expect("issue");
    assert!(!format!("{issued:?}").contains(&issued.token));
    // A broken key file names the file and the problem, not its contents.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.pem");
    std::fs::write(&path, pem.replace("-----END PRIVATE KEY-----", "")).expect("write");
    let error = SigningKey::load_pem_file(&path).expect_err("broken");
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("broken.pem"));
    assert!(!shown.contains(&body));
}

#[test]
fn jwks_shape() {
    let key = rsa_key();
    let issuer = issuer_with(vec![key.clone()]);
    let keys = jwks_keys(&issuer.jwks());
    assert_eq!(keys.len(), 1);
    let jwk = keys[0].as_object().expect("object");
    let mut names: Vec<&str> = jwk.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["kid"], key.kid());
    assert_eq!(jwk["e"], "AQAB");
    let n = b64d(jwk["n"].as_str().expect("n"));
    assert_eq!(n.len(), 256);
    assert_ne!(n[0], 0, "minimal big-endian");
    assert_eq!(n[0] & 0x80, 0x80, "2048-bit modulus");
    // n/e are the key's modulus and exponent (from aws-lc-rs's own DER).
    let der = match &key.material.private {
        PrivateKey::Rsa(pair) => pair.public_key().as_ref().to_vec(),
        _ => unreachable!("RSA key"),
    };
    assert_eq!(
        rsa_public_key_components(&der),
        Some((n, vec![0x01, 0x00, 0x01]))
    );
    // kid is the RFC 7638 thumbprint of exactly these members.
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        jwk["e"].as_str().expect("e"),
        jwk["n"].as_str().expect("n")
    );
    let digest = digest::digest(&digest::SHA256, canonical.as_bytes());
    assert_eq!(key.kid(), URL_SAFE_NO_PAD.encode(digest.as_ref()));
    assert_eq!(key.kid().len(), 43);
}

#[test]
fn rfc7638_example_thumbprint() {
    // RFC 7638 section 3.1.
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    let public = PublicParams::Rsa {
        n: b64d(n),
        e: b64d("AQAB"),
    };
    assert_eq!(
        thumbprint(&public),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

/// Builds an RFC 8017 RSAPublicKey DER from n and e, independently of the module.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn len(out: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            out.push(u8::try_from(len).expect("short"));
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            out.push(0x80 | u8::try_from(bytes.len()).expect("len of len"));
            out.extend(bytes);
        }
    }
    fn integer(out: &mut Vec<u8>, value: &[u8]) {
        let pad = value[0] & 0x80 != 0;
        out.push(0x02);
        len(out, value.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(value);
    }
    let mut body = Vec::new();
    integer(&mut body, n);
    integer(&mut body, e);
    let mut out = vec![0x30];
    len(&mut out, body.len());
    out.extend(body);
    out
}

#[test]
fn rs256_signature_verifies_from_the_published_jwks_alone() {
    let issuer = issuer_with(vec![rsa_key()]);
    let token = issuer.issue("alice", NOW_MS).expect("issue").token;
    let jwks = issuer.jwks();
    drop(issuer);

    let keys = jwks_keys(&jwks);
    let n = b64d(keys[0]["n"].as_str().expect("n"));
    let e = b64d(keys[0]["e"].as_str().expect("e"));
    let (input, sig) = token.rsplit_once('.').expect("signature part");
    let sig = b64d(sig);

    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, rsa_public_key_der(&n, &e));
    public
        .verify(input.as_bytes(), &sig)
        .expect("standard RS256 signature");
    // Also through the raw components, and a wrong message fails.
    let components = signature::RsaPublicKeyComponents { n: &n, e: &e };
    components
        .verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig)
        .expect("components verify");
    assert!(public.verify(b"other", &sig).is_err());
}

#[test]
fn es256_and_eddsa_round_trip() {
    let ec = SigningKey::generate_es256().expect("EC");
    let ed = SigningKey::generate_ed25519().expect("Ed25519");
    for key in [ec, ed] {
        let issuer = issuer_with(vec![key.clone()]);
        let issued = issuer.issue("bob", NOW_MS).expect("issue");
        let header: serde_json::Value =
            serde_json::from_slice(&b64d(&parts(&issued.token)[0])).expect("header");
        assert_eq!(header["alg"], key.algorithm().name());
        assert_eq!(
            issuer.verify(&[&issued.token], NOW_MS).map(|v| v.subject),
            Ok("bob".to_owned())
        );
        // PEM round trip keeps the kid.
        let pem = key.to_pkcs8_pem().expect("pem");
        let loaded = SigningKey::from_pem(&pem).expect("load");
        assert_eq!(loaded.kid(), key.kid());
        assert_eq!(loaded.algorithm(), key.algorithm());
        // Independent check from the JWKS.
        let keys = jwks_keys(&issuer.jwks());
        let (input, sig) = issued.token.rsplit_once('.').expect("sig");
        let sig = b64d(sig);
        match key.algorithm() {
            Algorithm::Es256 => {
                assert_eq!(keys[0]["kty"], "EC");
                assert_eq!(keys[0]["crv"], "P-256");
                let mut point = vec![0x04];
                point.extend(b64d(keys[0]["x"].as_str().expect("x")));
                point.extend(b64d(keys[0]["y"].as_str().expect("y")));
                assert_eq!(sig.len(), 64);
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(input.as_bytes(), &sig)
                    .expect("ES256");
            }
            Algorithm::EdDsa => {
                assert_eq!(keys[0]["kty"], "OKP");
                assert_eq!(keys[0]["crv"], "Ed25519");
                let x = b64d(keys[0]["x"].as_str().expect("x"));
                UnparsedPublicKey::new(&ED25519, x)
                    .verify(input.as_bytes(), &sig)
                    .expect("EdDSA");
            }
            Algorithm::Rs256 => unreachable!("not generated here"),
        }
    }
}
