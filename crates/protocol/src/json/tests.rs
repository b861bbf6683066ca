//! Unit tests of the JSON reader.

use super::*;

fn kind(input: &str) -> JsonErrorKind {
    match parse(input.as_bytes()) {
        Ok(v) => panic!("accepted {input:?} as {v:?}"),
        Err(e) => e.kind,
    }
}

#[test]
fn parses_values_and_keeps_number_text() {
    let v = parse(br#" {"a":[1,-2.50,3e+2,true,false,null],"b":{"c":"d"}} "#).expect("valid json");
    let JsonValue::Object(obj) = &v else {
        panic!("not an object")
    };
    let Some(JsonValue::Array(items)) = obj.get("a") else {
        panic!("no array")
    };
    let texts: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            JsonValue::Number(t) => Some(*t),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["1", "-2.50", "3e+2"]);
    let mut out = String::new();
    v.write_compact(&mut out);
    assert_eq!(out, r#"{"a":[1,-2.50,3e+2,true,false,null],"b":{"c":"d"}}"#);
}

#[test]
fn duplicate_keys_are_found_after_unescaping_at_any_depth() {
    assert_eq!(
        kind(r#"{"nonce":1,"nonce":2}"#),
        JsonErrorKind::DuplicateKey("nonce".into())
    );
    assert_eq!(
        kind(r#"{"nonce":1,"\u006eonce":2}"#),
        JsonErrorKind::DuplicateKey("nonce".into())
    );
    assert_eq!(
        kind(r#"{"a":[{"x":1,"x":1}]}"#),
        JsonErrorKind::DuplicateKey("x".into())
    );
    // Many keys: the hash-set path.
    let mut doc = String::from("{");
    for i in 0..40 {
        doc.push_str(&format!("\"k{i}\":{i},"));
    }
    doc.push_str("\"k7\":0}");
    assert_eq!(kind(&doc), JsonErrorKind::DuplicateKey("k7".into()));
}

#[test]
fn rejects_non_json() {
    assert_eq!(kind("01"), JsonErrorKind::InvalidNumber);
    assert_eq!(kind("1."), JsonErrorKind::InvalidNumber);
    assert_eq!(kind("+1"), JsonErrorKind::UnexpectedCharacter('+'));
    assert_eq!(kind("[1,]"), JsonErrorKind::UnexpectedCharacter(']'));
    assert_eq!(kind("{\"a\":1,}"), JsonErrorKind::UnexpectedCharacter('}'));
    assert_eq!(kind("\"a\u{1}\""), JsonErrorKind::ControlCharacter);
    assert_eq!(kind(r#""\x""#), JsonErrorKind::InvalidEscape);
    assert_eq!(kind(r#""\ud800""#), JsonErrorKind::InvalidEscape);
    assert_eq!(kind(r#""\udc00""#), JsonErrorKind::InvalidEscape);
    assert_eq!(kind("{} {}"), JsonErrorKind::TrailingCharacters);
    assert_eq!(kind("tru"), JsonErrorKind::UnexpectedEnd);
    assert_eq!(kind(""), JsonErrorKind::UnexpectedEnd);
    assert!(matches!(
        parse(b"\"\xff\""),
        Err(JsonError {
            kind: JsonErrorKind::InvalidUtf8,
            offset: 1
        })
    ));
}

#[test]
fn depth_is_limited_without_recursion_blowup() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    assert_eq!(kind(&deep), JsonErrorKind::TooDeep);
    let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
    assert!(parse(ok.as_bytes()).is_ok());
}

#[test]
fn escapes_unescape() {
    let v = parse(br#""\/api\/v4 \u041e\ud83d\ude00 \n""#).expect("valid");
    let JsonValue::String(s) = v else {
        panic!("not a string")
    };
    assert_eq!(s, "/api/v4 \u{41e}\u{1f600} \n");
}

#[test]
fn same_value_semantics() {
    let a = parse(br#"{"a":1,"b":[1,"x"],"c":"\/"}"#).expect("valid");
    let b = parse(br#"{ "c": "/", "b": [1, "x"], "a": 1 }"#).expect("valid");
    let c = parse(br#"{"a":1.0,"b":[1,"x"],"c":"/"}"#).expect("valid");
    let d = parse(br#"{"a":1,"b":["x",1],"c":"/"}"#).expect("valid");
    assert!(a.same_value(&b));
    assert!(!a.same_value(&c));
    assert!(!a.same_value(&d));
}

#[test]
fn parse_object_wants_one_object() {
    let object = parse_object(br#" {"a":1,"b":{"c":true}} "#).expect("an object");
    assert_eq!(object.len(), 2);
    assert!(object.same_members(&parse_object(br#"{"b":{"c":true},"a":1}"#).expect("object")));
    assert!(!object.same_members(&parse_object(br#"{"a":1}"#).expect("object")));
    match parse_object(b"[1]") {
        Err(ObjectError::NotObject(value)) => assert_eq!(value.type_name(), "array"),
        other => panic!("{other:?}"),
    }
    match parse_object(br#"{"a":1,"\u0061":2}"#) {
        Err(ObjectError::Json(e)) => {
            assert_eq!(e.kind, JsonErrorKind::DuplicateKey("a".into()))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(parse_object(b""), Err(ObjectError::Json(_))));
}

#[test]
fn write_string_escapes_controls() {
    let mut out = String::new();
    write_string("a\"b\\c\u{1}\n", &mut out);
    assert_eq!(out, r#""a\"b\\c\u0001\n""#);
}
