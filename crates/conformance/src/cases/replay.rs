//! Replay storms: copies of one signed request sent at once must be accepted exactly once.

use whitebit_auth::ApiError;

use crate::Group;
use crate::report::{CaseReport, Verdict, shown};
use crate::target::Session;
use crate::wire::{Fields, signed};

pub(crate) fn run(session: &Session<'_>, copies: usize, out: &mut Vec<CaseReport>) {
    let target = session.target;
    let url = target.url_path(&target.path);
    for (mode, refusal) in [
        ("window", ApiError::NonceReused),
        ("strict", ApiError::NonceNotIncreasing),
    ] {
        let fields = if mode == "window" {
            Fields::window(&target.path, session.next_nonce())
        } else {
            Fields::strict(&target.path, session.next_strict_nonce())
        };
        let request = signed(&url, fields.text().as_bytes(), &target.credentials);
        let answers = session.storm(&request, copies);
        let accepted = answers
            .iter()
            .filter(|a| a.as_ref().is_ok_and(|a| (200..300).contains(&a.status)))
            .count();
        let refused = answers
            .iter()
            .filter(|a| {
                a.as_ref().is_ok_and(|a| {
                    a.status == refusal.status() && a.body == refusal.body().as_bytes()
                })
            })
            .count();
        let verdict = if accepted == 1 && refused == copies - 1 {
            Verdict::Pass
        } else if accepted > 1 {
            Verdict::Fail(format!("a replayed request was accepted {accepted} times"))
        } else {
            Verdict::Fail(format!(
                "{accepted} accepted and {refused} refused at row {} of {copies}",
                refusal.row()
            ))
        };
        let others: Vec<String> = answers
            .iter()
            .filter(|a| {
                !a.as_ref().is_ok_and(|a| {
                    (200..300).contains(&a.status)
                        || (a.status == refusal.status() && a.body == refusal.body().as_bytes())
                })
            })
            .take(3)
            .map(shown)
            .collect();
        out.push(CaseReport {
            id: format!("replay.{mode}"),
            group: Group::Replay,
            rule: format!(
                "row {}: {copies} copies of one {mode}-mode request at once → exactly one accepted",
                refusal.row()
            ),
            sent: format!("{copies} × {}", request.describe()),
            expected: format!(
                "1 × 2xx, {} × {} {}",
                copies - 1,
                refusal.status(),
                refusal.body()
            ),
            got: format!(
                "{accepted} × 2xx, {refused} × row {}{}",
                refusal.row(),
                if others.is_empty() {
                    String::new()
                } else {
                    format!("; others: {}", others.join(" | "))
                }
            ),
            verdict,
        });
    }
}
