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

#[test]
fn classify_prints_the_documented_fields_in_order_and_skips_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = concat!(
        r#"{"id": "a", "title": "China schedules fentanyl precursors after US talks", "published": "2025-03-01T00:00:00Z", "extra": 1}"#,
        "\n",
        "not json\n",
        r#"{"id": 7, "title": "Local bakery wins prize", "published": "2025-03-01"}"#,
        "\n",
        r#"{"id": "c", "title": "x", "published": "yesterday"}"#,
        "\n",
    );
    let out = storywatch(dir.path(), &["classify", "--json"], Some(input));
    assert!(
        !out.status.success(),
        "bad lines make the exit code non-zero"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "the two good lines still get verdicts: {stdout}"
    );
    for line in &lines {
        let keys: Vec<&str> = line
            .trim_start_matches('{')
            .split(",\"")
            .filter_map(|part| part.trim_start_matches('"').split_once("\":"))
            .map(|(k, _)| k)
            .filter(|k| ["id", "verdict", "score", "baseline", "why"].contains(k))
            .collect();
        assert_eq!(
            keys,
            ["id", "verdict", "score", "baseline", "why"],
            "{line}"
        );
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value.as_object().unwrap().len(), 5, "{line}");
    }
    assert!(
        lines[0].starts_with(r#"{"id":"a","verdict":"follow_up""#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(r#"{"id":7,"verdict":"off_topic""#),
        "{}",
        lines[1]
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stdin line 2"), "{stderr}");
    assert!(
        stderr.contains("stdin line 4") && stderr.contains("yesterday"),
        "{stderr}"
    );
}
