//! The public side of a key as a JWK: parameters, RFC 7638 thumbprint, RSA public key DER.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use whitebit_auth::json::write_string;

/// Public parameters as the JWK carries them (big-endian, minimal for RSA).
pub(super) enum PublicParams {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { x: Vec<u8>, y: Vec<u8> },
    Ed { x: Vec<u8> },
}

/// The public JWK (`kty`, `use`, `alg`, `kid` and the public parameters) as JSON.
pub(super) fn public_jwk(public: &PublicParams, alg: &str, kid: &str) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("{\"kty\":\"");
    out.push_str(match public {
        PublicParams::Rsa { .. } => "RSA",
        PublicParams::Ec { .. } => "EC",
        PublicParams::Ed { .. } => "OKP",
    });
    out.push_str("\",\"use\":\"sig\",\"alg\":\"");
    out.push_str(alg);
    out.push_str("\",\"kid\":");
    write_string(kid, &mut out);
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    match public {
        PublicParams::Rsa { n, e } => {
            out.push_str(&format!(",\"n\":\"{}\",\"e\":\"{}\"", b64(n), b64(e)));
        }
        PublicParams::Ec { x, y } => {
            out.push_str(&format!(
                ",\"crv\":\"P-256\",\"x\":\"{}\",\"y\":\"{}\"",
                b64(x),
                b64(y)
            ));
        }
        PublicParams::Ed { x } => {
            out.push_str(&format!(",\"crv\":\"Ed25519\",\"x\":\"{}\"", b64(x)));
        }
    }
    out.push('}');
    out
}

/// RFC 7638: SHA-256 of the required members in lexicographic order, base64url.
pub(super) fn thumbprint(public: &PublicParams) -> String {
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let canonical = match public {
        PublicParams::Rsa { n, e } => {
            format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n))
        }
        PublicParams::Ec { x, y } => format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64(x),
            b64(y)
        ),
        PublicParams::Ed { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
    };
    b64(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
}

/// Splits one DER TLV with the expected tag off `input`: `(contents, rest)`.
pub(super) fn der_take(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len_byte, rest) = rest.split_first()?;
    let (len, rest) = if len_byte < 0x80 {
        (usize::from(len_byte), rest)
    } else {
        let count = usize::from(len_byte & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(count);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

/// `n` and `e` (minimal big-endian) of an RFC 8017 `RSAPublicKey`.
pub(super) fn rsa_public_key_components(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (seq, rest) = der_take(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (n, rest) = der_take(seq, 0x02)?;
    let (e, rest) = der_take(rest, 0x02)?;
    if !rest.is_empty() {
        return None;
    }
    let minimal = |int: &[u8]| {
        let start = int.iter().position(|&b| b != 0).unwrap_or(int.len());
        int[start..].to_vec()
    };
    let (n, e) = (minimal(n), minimal(e));
    (!n.is_empty() && !e.is_empty()).then_some((n, e))
}
