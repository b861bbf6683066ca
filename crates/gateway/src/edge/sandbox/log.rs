//! The request log for tests: `GET /sandbox/requests` answers the last 100 requests (time,
//! method, path, status, finding codes) as JSON. No payloads, signatures, keys or secrets.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// How many requests the log keeps.
pub(crate) const KEPT: usize = 100;

/// One request, as the log shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Entry {
    /// When it arrived (Unix ms, the sandbox's clock).
    pub(crate) time_ms: u64,
    /// The method.
    pub(crate) method: String,
    /// The URL path (and query, as sent).
    pub(crate) path: String,
    /// The answer's status; `null` when the connection was closed without one.
    pub(crate) status: Option<u16>,
    /// The diagnosis: the finding codes of a refusal, `injected-…` for an injected fault,
    /// empty for an accepted request.
    pub(crate) codes: Vec<String>,
}

/// The last [`KEPT`] requests, oldest first.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    entries: Mutex<VecDeque<Entry>>,
}

impl RequestLog {
    pub(crate) fn record(&self, entry: Entry) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() == KEPT {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// `{"requests":[…]}`, oldest first.
    pub(crate) fn json(&self) -> String {
        #[derive(Serialize)]
        struct Page<'a> {
            requests: &'a VecDeque<Entry>,
        }
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        serde_json::to_string(&Page { requests: &entries })
            .unwrap_or_else(|_| r#"{"requests":[]}"#.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_hundred() {
        let log = RequestLog::default();
        for i in 0..150u64 {
            log.record(Entry {
                time_ms: i,
                method: "POST".into(),
                path: format!("/p{i}"),
                status: Some(200),
                codes: Vec::new(),
            });
        }
        let page: serde_json::Value = serde_json::from_str(&log.json()).expect("json");
        let requests = page["requests"].as_array().expect("array");
        assert_eq!(requests.len(), KEPT);
        assert_eq!(requests[0]["path"], "/p50");
        assert_eq!(requests[99]["time_ms"], 149);
    }
}
