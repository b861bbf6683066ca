//! The sandbox's built-in answers (`docs/design-decisions.md` 25).

use whitebit_auth::json::{self, JsonValue, write_string};

use crate::verify::Verified;

/// `/api/v4/trade-account/balance`
pub(crate) const TRADE_BALANCE: &str =
    r#"{"BTC":{"available":"0.5","freeze":"0"},"USDT":{"available":"1000","freeze":"0"}}"#;
/// `/api/v4/main-account/balance`
pub(crate) const MAIN_BALANCE: &str =
    r#"{"BTC":{"main_balance":"1.25"},"USDT":{"main_balance":"5000"}}"#;

/// The answer for a verified request: the two balances, or an echo of what was verified
/// (`{"request":…,"params":{…everything but request/nonce/nonceWindow},"key":…}`).
#[must_use]
pub(crate) fn answer(verified: &Verified) -> String {
    match verified.path.as_str() {
        "/api/v4/trade-account/balance" => TRADE_BALANCE.to_owned(),
        "/api/v4/main-account/balance" => MAIN_BALANCE.to_owned(),
        path => {
            let mut out = String::with_capacity(64 + verified.payload.len());
            out.push_str("{\"request\":");
            write_string(path, &mut out);
            out.push_str(",\"params\":{");
            if let Ok(JsonValue::Object(obj)) = json::parse(&verified.payload) {
                let mut first = true;
                for (name, value) in obj.iter() {
                    if matches!(name, "request" | "nonce" | "nonceWindow") {
                        continue;
                    }
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    write_string(name, &mut out);
                    out.push(':');
                    value.write_compact(&mut out);
                }
            }
            out.push_str("},\"key\":");
            write_string(&verified.key.public_key, &mut out);
            out.push('}');
            out
        }
    }
}
