//! What a run found: one entry per case, and the three ways to print it (text, JSON, JUnit XML).

use std::fmt::Write as _;

use crate::Group;
use crate::error::ConformanceError;
use crate::http::{Answer, Request};

/// A case's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The server answered as the scheme requires.
    Pass,
    /// It did not; the text says how.
    Fail(String),
    /// The case did not run; the text says what it needs.
    Skip(String),
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseReport {
    /// Stable id, e.g. `errors.row-12` or `errors.pair-4-9`.
    pub id: String,
    /// Its group.
    pub group: Group,
    /// The row of `docs/errors.md` or the rule it checks.
    pub rule: String,
    /// What was sent (method, path, headers, body; never a secret).
    pub sent: String,
    /// What the scheme requires.
    pub expected: String,
    /// What came back.
    pub got: String,
    /// The verdict.
    pub verdict: Verdict,
}

/// An expected answer.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    /// Exactly this status and body.
    Exact { status: u16, body: String },
    /// Any 2xx answer (an accepted request; its body is the upstream's).
    Accepted,
}

impl Expect {
    /// Exactly this status and body.
    pub(crate) fn exact(status: u16, body: &str) -> Self {
        Self::Exact {
            status,
            body: body.to_owned(),
        }
    }

    /// A catalogue answer.
    pub(crate) fn error(error: whitebit_auth::ApiError) -> Self {
        Self::exact(error.status(), error.body())
    }

    /// Any 2xx answer.
    pub(crate) fn accepted() -> Self {
        Self::Accepted
    }

    fn describe(&self) -> String {
        match self {
            Self::Exact { status, body } => format!("{status} {body}"),
            Self::Accepted => "2xx (accepted)".into(),
        }
    }

    /// Whether `answer` is this.
    pub(crate) fn matches(&self, answer: &Answer) -> bool {
        match self {
            Self::Exact { status, body } => {
                answer.status == *status && answer.body == body.as_bytes()
            }
            Self::Accepted => (200..300).contains(&answer.status),
        }
    }
}

/// Shows an answer (status and body, shortened).
pub(crate) fn shown(answer: &Result<Answer, ConformanceError>) -> String {
    match answer {
        Ok(answer) => {
            let text: String = answer.text().chars().take(300).collect();
            format!("{} {text}", answer.status)
        }
        Err(e) => format!("no answer: {e}"),
    }
}

impl CaseReport {
    /// The report of sending `request` and getting `answer` where `expect` was due.
    pub(crate) fn checked(
        id: impl Into<String>,
        group: Group,
        rule: impl Into<String>,
        request: &Request,
        expect: &Expect,
        answer: &Result<Answer, ConformanceError>,
    ) -> Self {
        let verdict = match answer {
            Ok(a) if expect.matches(a) => Verdict::Pass,
            Ok(_) => Verdict::Fail("a different answer".into()),
            Err(e) => Verdict::Fail(format!("no answer: {e}")),
        };
        Self {
            id: id.into(),
            group,
            rule: rule.into(),
            sent: request.describe(),
            expected: expect.describe(),
            got: shown(answer),
            verdict,
        }
    }

    /// A case that did not run.
    pub(crate) fn skipped(
        id: impl Into<String>,
        group: Group,
        rule: impl Into<String>,
        why: &str,
    ) -> Self {
        Self {
            id: id.into(),
            group,
            rule: rule.into(),
            sent: String::new(),
            expected: String::new(),
            got: String::new(),
            verdict: Verdict::Skip(why.to_owned()),
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every case, in the order they ran.
    pub cases: Vec<CaseReport>,
    /// Facts about the run (the server's clock, what was left out).
    pub notes: Vec<String>,
}

impl Report {
    /// Cases that passed.
    #[must_use]
    pub fn passed(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Pass))
    }

    /// Cases that failed.
    #[must_use]
    pub fn failed(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Fail(_)))
    }

    /// Cases that were skipped.
    #[must_use]
    pub fn skipped(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Skip(_)))
    }

    fn count(&self, which: impl Fn(&Verdict) -> bool) -> usize {
        self.ids(which).len()
    }

    /// The ids of the cases that failed, in the order they ran.
    #[must_use]
    pub fn failed_ids(&self) -> Vec<&str> {
        self.ids(|v| matches!(v, Verdict::Fail(_)))
    }

    /// The ids of the cases that were skipped, in the order they ran.
    #[must_use]
    pub fn skipped_ids(&self) -> Vec<&str> {
        self.ids(|v| matches!(v, Verdict::Skip(_)))
    }

    fn ids(&self, which: impl Fn(&Verdict) -> bool) -> Vec<&str> {
        self.cases
            .iter()
            .filter(|c| which(&c.verdict))
            .map(|c| c.id.as_str())
            .collect()
    }

    /// `N passed, N failed, N skipped`.
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed(),
            self.failed(),
            self.skipped()
        )
    }

    /// For a terminal: a line per case, the details of each failure, the summary last.
    #[must_use]
    pub fn text(&self) -> String {
        let mut out = String::new();
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        for case in &self.cases {
            let (mark, why) = match &case.verdict {
                Verdict::Pass => ("pass", String::new()),
                Verdict::Fail(why) => ("FAIL", format!(" — {why}")),
                Verdict::Skip(why) => ("skip", format!(" — {why}")),
            };
            let _ = writeln!(out, "{mark}  {:<28} {}{why}", case.id, case.rule);
            if let Verdict::Fail(_) = case.verdict {
                let _ = writeln!(out, "      expected: {}", case.expected);
                let _ = writeln!(out, "      got:      {}", case.got);
                for line in case.sent.lines() {
                    let _ = writeln!(out, "      > {line}");
                }
            }
        }
        let _ = writeln!(out, "{}", self.summary());
        out
    }

    /// One JSON document: `{"passed":N,"failed":N,"skipped":N,"notes":[…],"cases":[…]}`.
    #[must_use]
    pub fn json(&self) -> String {
        let cases: Vec<serde_json::Value> = self
            .cases
            .iter()
            .map(|c| {
                let (verdict, why) = match &c.verdict {
                    Verdict::Pass => ("pass", ""),
                    Verdict::Fail(why) => ("fail", why.as_str()),
                    Verdict::Skip(why) => ("skip", why.as_str()),
                };
                serde_json::json!({
                    "id": c.id, "group": c.group.name(), "rule": c.rule, "verdict": verdict,
                    "why": why, "expected": c.expected, "got": c.got, "sent": c.sent,
                })
            })
            .collect();
        serde_json::json!({
            "passed": self.passed(), "failed": self.failed(), "skipped": self.skipped(),
            "notes": self.notes, "cases": cases,
        })
        .to_string()
    }

    /// JUnit XML (one test suite per group), for CI systems that read it.
    #[must_use]
    pub fn junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"wbauth conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
            self.cases.len(),
            self.failed(),
            self.skipped()
        );
        for group in Group::ALL {
            let cases: Vec<&CaseReport> = self.cases.iter().filter(|c| c.group == *group).collect();
            if cases.is_empty() {
                continue;
            }
            let failures = cases
                .iter()
                .filter(|c| matches!(c.verdict, Verdict::Fail(_)))
                .count();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">",
                group.name(),
                cases.len()
            );
            for case in cases {
                let _ = write!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\">",
                    group.name(),
                    xml(&format!("{} ({})", case.id, case.rule))
                );
                match &case.verdict {
                    Verdict::Pass => {}
                    Verdict::Skip(why) => {
                        let _ = write!(out, "<skipped message=\"{}\"/>", xml(why));
                    }
                    Verdict::Fail(why) => {
                        let _ = write!(
                            out,
                            "<failure message=\"{}\">expected: {}\ngot: {}\nsent:\n{}</failure>",
                            xml(why),
                            xml(&case.expected),
                            xml(&case.got),
                            xml(&case.sent)
                        );
                    }
                }
                out.push_str("</testcase>\n");
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

fn xml(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}
