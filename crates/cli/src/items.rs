//! httpie-style request items: `key=value` is a string, `key:=json` a typed value.

use serde_json::{Map, Value};

/// Parses items into a parameter object, in order.
pub(crate) fn parse_items(items: &[String]) -> Result<Map<String, Value>, String> {
    let mut params = Map::new();
    for item in items {
        let Some(eq) = item.find('=') else {
            return Err(format!(
                "{item:?}: expected key=value (string) or key:=json (typed value)"
            ));
        };
        let (key, value) = if item[..eq].ends_with(':') {
            let raw = &item[eq + 1..];
            let value: Value = serde_json::from_str(raw)
                .map_err(|e| format!("{item:?}: the value after := is not JSON ({e})"))?;
            (&item[..eq - 1], value)
        } else {
            (&item[..eq], Value::String(item[eq + 1..].to_owned()))
        };
        if key.is_empty() {
            return Err(format!("{item:?}: the parameter name is empty"));
        }
        if params.insert(key.to_owned(), value).is_some() {
            return Err(format!("parameter {key:?} given twice"));
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_and_typed_values() {
        let items: Vec<String> = [
            "ticker=BTC",
            "limit:=100",
            "flags:=[1,\"a\"]",
            "eq=a=b",
            "empty=",
            "obj:={\"x\":null}",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let params = parse_items(&items).expect("valid");
        assert_eq!(
            Value::Object(params),
            json!({"ticker": "BTC", "limit": 100, "flags": [1, "a"], "eq": "a=b", "empty": "", "obj": {"x": null}})
        );
        let keys: Vec<String> = parse_items(&items)
            .expect("valid")
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            ["ticker", "limit", "flags", "eq", "empty", "obj"],
            "insertion order kept"
        );
    }

    #[test]
    fn bad_items() {
        for bad in ["noequals", "=x", ":=1", "n:=not json", "n:="] {
            assert!(parse_items(&[bad.to_owned()]).is_err(), "{bad}");
        }
        assert!(parse_items(&["a=1".to_owned(), "a=2".to_owned()]).is_err());
    }
}
