//! Fiat Gateway helpers: token signing keys, the route, partners, orders and their requests.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use whitebit_auth::fiat::OrderFields;

use super::gateway::{Gateway, Upstream};
use super::{Answer, post};

/// The Fiat Gateway route the tests send to.
pub const DEPOSIT: &str = "/api/v1/fiat/deposit";

/// The `[[fiat.route]]` to `upstream`.
pub fn fiat_route(upstream: &Upstream) -> String {
    format!(
        "[[fiat.route]]\nprefix = \"/api/v1/fiat\"\nupstream = \"http://{}\"\n",
        upstream.addr
    )
}

/// `[tokens]` with the one signing key `pem`, kid `k1`.
pub fn token_keys(pem: &Path) -> String {
    format!(
        "[tokens]\nkeys = [{{ pem = \"{}\", kid = \"k1\" }}]\n",
        pem.display()
    )
}

/// What a gateway needs to issue tokens and serve a Fiat Gateway route: a new signing key
/// `k1` in `DIR/signing.pem`, a key kind (name, the one path it opens) for the token endpoint,
/// the route to `upstream`; (the configuration to add, the PEM's path).
pub fn issuing_config(dir: &Path, kind: (&str, &str), upstream: &Upstream) -> (String, PathBuf) {
    let pem = dir.join("signing.pem");
    new_signing_key(&pem);
    let (name, path) = kind;
    let extra = format!(
        "[[kind]]\nname = \"{name}\"\npaths = [\"{path}\"]\n\n{}\n{}",
        token_keys(&pem),
        fiat_route(upstream)
    );
    (extra, pem)
}

/// Writes a new RS256 token signing key to `pem`.
pub fn new_signing_key(pem: &Path) {
    whitebit_gateway::tokens::SigningKey::generate_rs256()
        .expect("key")
        .write_pkcs8_pem_file(pem)
        .expect("PEM written");
}

/// `wbauth partners create NAME`; (auth key, enc key).
pub fn create_partner(gw: &Gateway, name: &str) -> (String, String) {
    let created = gw.ok(&["partners", "create", name]);
    (field(&created, "auth_key"), field(&created, "enc_key"))
}

/// The value of the `NAME=value` line of a CLI's output.
pub fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name}= in {out}"))
        .to_owned()
}

/// An order in UAH: its fields and its JSON body.
pub fn uah_order<'a>(amount: &'a str, order_id: &'a str) -> (OrderFields<'a>, String) {
    let body = format!(r#"{{"currency":"UAH","amount":"{amount}","orderId":"{order_id}"}}"#);
    let fields = OrderFields {
        currency: "UAH",
        amount,
        order_id,
    };
    (fields, body)
}

/// A JSON request to the Fiat Gateway route `path` with these headers.
pub async fn fiat_request(
    gw: &Gateway,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &str,
) -> Answer {
    let mut all: Vec<(&str, &[u8])> = vec![("content-type", b"application/json")];
    all.extend_from_slice(headers);
    post(&format!("{}{path}", gw.base), &all, body.to_owned()).await
}

/// A partner's request to `path`: its token (`Authorization`) and its `X-Auth-Key`.
pub async fn partner_request(
    gw: &Gateway,
    path: &str,
    auth_key: &str,
    bearer: &str,
    body: &str,
) -> Answer {
    let headers: [(&str, &[u8]); 2] = [
        ("authorization", bearer.as_bytes()),
        ("x-auth-key", auth_key.as_bytes()),
    ];
    fiat_request(gw, path, &headers, body).await
}
