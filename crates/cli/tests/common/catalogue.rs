//! The answers of `docs/errors.md`, byte for byte, and the paths the tests send to.

#![allow(dead_code)]

pub const BALANCE: &str = "/api/v4/trade-account/balance";
pub const ORDER: &str = "/api/v4/order/new";
pub const MAIN_BALANCE: &str = "/api/v4/main-account/balance";

pub const METHOD: &str = r#"{"code":0,"message":"Method not allowed."}"#;
pub const TOO_LARGE: &str = r#"{"code":0,"message":"Payload too large."}"#;
pub const MEDIA: &str = r#"{"code":0,"message":"Content-Type must be application/json."}"#;
pub const KEY_MISSING: &str = r#"{"code":0,"message":"API key not provided."}"#;
pub const PAYLOAD_MISSING: &str = r#"{"code":0,"message":"Payload not provided."}"#;
pub const SIGNATURE_MISSING: &str = r#"{"code":0,"message":"Signature not provided."}"#;
pub const BAD_PAYLOAD: &str = r#"{"code":9,"message":"Invalid payload."}"#;
pub const REQUEST_MISSING: &str = r#"{"code":0,"message":"Request not provided."}"#;
pub const PATH_MISMATCH: &str =
    r#"{"code":0,"message":"Request does not match the endpoint path."}"#;
pub const NONCE_MISSING: &str = r#"{"code":0,"message":"Nonce not provided."}"#;
pub const BAD_NONCE: &str = r#"{"code":0,"message":"Invalid nonce."}"#;
pub const BAD_WINDOW: &str = r#"{"code":0,"message":"Invalid nonceWindow."}"#;
pub const UNAUTHORIZED: &str = r#"{"code":10,"message":"Unauthorized request."}"#;
/// A disabled, idle or IP-restricted key.
pub const KEY_DISABLED: &str =
    r#"{"code":2,"message":"This action is unauthorized. Enable your key in API settings"}"#;
pub const NOT_FOUND: &str = r#"{"code":0,"message":"Endpoint not found."}"#;
pub const FORBIDDEN: &str =
    r#"{"code":0,"message":"You don't have permission to use this endpoint."}"#;
pub const TOO_OLD: &str =
    r#"{"code":0,"message":"Your nonce is more than 5 seconds lesser than the current nonce."}"#;
pub const TOO_NEW: &str =
    r#"{"code":0,"message":"Your nonce is more than 5 seconds greater than the current nonce."}"#;
pub const TOO_MANY: &str = r#"{"code":0,"errors":{},"message":"Too many requests."}"#;
pub const BUSY: &str = r#"{"code":0,"message":"Service temporarily unavailable."}"#;
pub const BAD_GATEWAY: &str = r#"{"code":0,"message":"Bad gateway."}"#;
pub const GATEWAY_TIMEOUT: &str = r#"{"code":0,"message":"Gateway timeout."}"#;
