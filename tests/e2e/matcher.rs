//! The matcher from outside: `classify` and `eval` agree on the shared development set, and
//! the matcher beats the keyword query there.

use std::path::Path;

use crate::support::{storywatch, success};

fn dev_set() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/eval/dev.jsonl");
    std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "the shared development set {} is missing ({err}); CI clones shared/ beside the repo",
            path.display()
        )
    })
}

/// The `storywatch (shipped)` row of `eval`: (P, R, F1, P_miss, P_fa, cost).
fn shipped_row(report: &str, name: &str) -> Vec<f64> {
    let line = report
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} row:\n{report}"));
    line[name.len()..]
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect()
}

#[test]
fn classify_gives_the_same_verdicts_as_eval() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dev_set();
    let classified = success(&storywatch(
        dir.path(),
        &["classify", "--json"],
        Some(&labels),
    ));

    // Detection figures recomputed from classify's output.
    let (mut tp, mut fp, mut fn_, mut negatives) = (0.0, 0.0, 0.0, 0.0);
    for (label, verdict) in labels.lines().zip(classified.lines()) {
        let label: serde_json::Value = serde_json::from_str(label).unwrap();
        let verdict: serde_json::Value = serde_json::from_str(verdict).unwrap();
        assert_eq!(label["id"], verdict["id"]);
        let detected = matches!(verdict["verdict"].as_str(), Some("follow_up" | "re_report"));
        match label["grade"].as_i64().unwrap() {
            2 | 3 if detected => tp += 1.0,
            2 | 3 => fn_ += 1.0,
            0 => {
                negatives += 1.0;
                if detected {
                    fp += 1.0;
                }
            }
            _ => {}
        }
    }
    let cost = fn_ / (tp + fn_) + 4.9 * fp / negatives;

    let labels_path = dir.path().join("dev.jsonl");
    std::fs::write(&labels_path, &labels).unwrap();
    let report = success(&storywatch(
        dir.path(),
        &["eval", "--labels", labels_path.to_str().unwrap()],
        None,
    ));
    let shipped = shipped_row(&report, "storywatch (shipped)");
    assert!(
        (shipped[shipped.len() - 1] - cost).abs() < 0.0015,
        "eval cost {shipped:?} vs classify cost {cost:.3}\n{report}"
    );

    // And it beats a Google-Alerts-style keyword query measured on the same items.
    let keyword = shipped_row(&report, "keyword query");
    assert!(
        shipped[shipped.len() - 1] < keyword[keyword.len() - 1],
        "{report}"
    );
}

#[test]
fn eval_lists_mistakes_with_their_explanation() {
    let dir = tempfile::tempdir().unwrap();
    let labels_path = dir.path().join("dev.jsonl");
    std::fs::write(&labels_path, dev_set()).unwrap();
    let report = success(&storywatch(
        dir.path(),
        &[
            "eval",
            "--labels",
            labels_path.to_str().unwrap(),
            "--errors",
        ],
        None,
    ));
    assert!(report.contains("confusion"), "{report}");
    assert!(
        report.contains("follow-up vs re-report accuracy"),
        "{report}"
    );

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\": 1}\n").unwrap();
    let out = storywatch(
        dir.path(),
        &["eval", "--labels", bad.to_str().unwrap()],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.jsonl"));
}
