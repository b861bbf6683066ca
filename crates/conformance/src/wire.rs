//! Building signed requests: a body from its fields, the three headers over it, and the
//! edits a case makes to the result.

use whitebit_auth::encoding::base64_encode;
use whitebit_auth::mac::sign_payload;

use crate::http::Request;
use crate::target::Credentials;

/// A body as an ordered list of members, values as JSON text.
#[derive(Debug, Clone)]
pub(crate) struct Fields(pub(crate) Vec<(String, String)>);

impl Fields {
    /// `{"request":PATH,"nonce":NONCE,"nonceWindow":true}`.
    pub(crate) fn window(path: &str, nonce: u64) -> Self {
        Self(vec![
            ("request".into(), json_string(path)),
            ("nonce".into(), nonce.to_string()),
            ("nonceWindow".into(), "true".into()),
        ])
    }

    /// `{"request":PATH,"nonce":NONCE,"nonceWindow":false}`.
    pub(crate) fn strict(path: &str, nonce: u64) -> Self {
        let mut fields = Self::window(path, nonce);
        fields.set("nonceWindow", "false");
        fields
    }

    /// Sets (or adds) member `name` to the JSON text `value`.
    pub(crate) fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(member) => member.1 = value.to_owned(),
            None => self.0.push((name.to_owned(), value.to_owned())),
        }
    }

    /// Removes member `name`.
    pub(crate) fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| n != name);
    }

    /// The member's JSON text.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The compact JSON text.
    pub(crate) fn text(&self) -> String {
        let members: Vec<String> = self
            .0
            .iter()
            .map(|(name, value)| format!("{}:{value}", json_string(name)))
            .collect();
        format!("{{{}}}", members.join(","))
    }
}

/// `text` as a JSON string.
pub(crate) fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// A POST of `body` to `url_path`, signed with `credentials`: payload = base64(body),
/// signature = hex(HMAC-SHA512(payload, secret)).
pub(crate) fn signed(url_path: &str, body: &[u8], credentials: &Credentials) -> Request {
    let payload = base64_encode(body);
    let signature = sign_payload(credentials.secret(), payload.as_bytes());
    Request {
        method: "POST".into(),
        target: url_path.to_owned(),
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("X-TXC-APIKEY".into(), credentials.key.clone()),
            ("X-TXC-PAYLOAD".into(), payload),
            ("X-TXC-SIGNATURE".into(), signature),
        ],
        body: body.to_vec(),
        content_length: true,
    }
}

impl Request {
    /// A `GET` of `target` without a body.
    pub(crate) fn get(target: String) -> Self {
        Self {
            method: "GET".into(),
            target,
            headers: Vec::new(),
            body: Vec::new(),
            content_length: false,
        }
    }

    /// The value of header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets header `name` (any case) to `value`, adding it when absent.
    pub(crate) fn set_header(&mut self, name: &str, value: &str) {
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(header) => header.1 = value.to_owned(),
            None => self.headers.push((name.to_owned(), value.to_owned())),
        }
    }

    /// Removes header `name` (any case).
    pub(crate) fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Re-signs the payload now in `X-TXC-PAYLOAD` with `credentials` (when the request has
    /// both headers).
    pub(crate) fn resign(&mut self, credentials: &Credentials) {
        if self.header("X-TXC-SIGNATURE").is_none() {
            return;
        }
        if let Some(payload) = self.header("X-TXC-PAYLOAD") {
            let signature = sign_payload(credentials.secret(), payload.as_bytes());
            self.set_header("X-TXC-SIGNATURE", &signature);
        }
    }

    /// What was sent, for a report: method, target, headers (the signature shortened) and
    /// body. Never a secret: the suite does not put one on the wire.
    pub(crate) fn describe(&self) -> String {
        let mut text = format!("{} {}", self.method, self.target);
        for (name, value) in &self.headers {
            let shown = if name.eq_ignore_ascii_case("X-TXC-SIGNATURE") && value.len() > 16 {
                format!("{}…", &value[..16])
            } else {
                value.clone()
            };
            text.push_str(&format!("\n{name}: {shown}"));
        }
        if !self.body.is_empty() {
            let body = String::from_utf8_lossy(&self.body);
            let body: String = body.chars().take(300).collect();
            text.push_str(&format!("\n\n{body}"));
        }
        text
    }
}
