use axum::http::{HeaderMap, HeaderValue};

use super::context::cookie;
use super::keys::ip_list;
use super::*;
use crate::edge::form::Form;

#[test]
fn forms_decode_repeated_fields() {
    let form = Form::parse(b"csrf=ab&endpoint=%2Fapi%2Fv4%2Forder%2F*&endpoint=%2Fx&ips=1.2.3.4%0D%0A10.0.0.0%2F8&name=a+b");
    assert_eq!(form.get("csrf"), Some("ab"));
    assert_eq!(form.all("endpoint"), vec!["/api/v4/order/*", "/x"]);
    assert_eq!(ip_list(form.text("ips")), vec!["1.2.3.4", "10.0.0.0/8"]);
    assert_eq!(form.text("name"), "a b");
    assert_eq!(form.get("missing"), None);
}

#[test]
fn cookies_are_found_and_checked() {
    let mut headers = HeaderMap::new();
    let id = "ab".repeat(32);
    headers.insert(
        header::COOKIE,
        HeaderValue::from_str(&format!("other=1; {COOKIE}={id}")).expect("header"),
    );
    assert_eq!(cookie(&headers, COOKIE), Some(id));
    assert_eq!(cookie(&headers, FORM_COOKIE), None);
    headers.insert(
        header::COOKIE,
        HeaderValue::from_static("wbauth_console=short"),
    );
    assert_eq!(cookie(&headers, COOKIE), None);
}

#[test]
fn dates_are_utc() {
    assert_eq!(pages::date(0), "1970-01-01 00:00 UTC");
    assert_eq!(pages::date(1_780_000_000_000), "2026-05-28 20:26 UTC");
}
