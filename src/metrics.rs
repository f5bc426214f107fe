//! Metrics in the Prometheus text format, served at `/metrics`.
//!
//! Events that happen in this process (polls, fetch errors, poll-cycle durations, delivery
//! attempts) are counted in memory since start, as Prometheus counters expect. Totals the
//! database already holds (items, matches by verdict, deliveries by state) are read from it at
//! scrape time, so they survive restarts and are never counted twice.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the poll-cycle duration histogram's buckets.
const CYCLE_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// The process's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    polls: Mutex<BTreeMap<&'static str, u64>>,
    fetch_errors: Mutex<BTreeMap<String, u64>>,
    deliveries: Mutex<BTreeMap<(String, &'static str), u64>>,
    new_items: AtomicU64,
    new_matches: AtomicU64,
    cycle_buckets: [AtomicU64; CYCLE_BUCKETS.len()],
    cycle_count: AtomicU64,
    cycle_micros: AtomicU64,
}

/// What the database contributes at scrape time.
#[derive(Debug, Clone, Default)]
pub struct StoredCounts {
    /// Items stored.
    pub items: u64,
    /// Matches by verdict.
    pub matches: Vec<(String, u64)>,
    /// Deliveries by channel and state (`pending`, `delivered`, `failed`).
    pub deliveries: Vec<(String, String, u64)>,
    /// Active feeds, and how many of them are failing.
    pub feeds: u64,
    /// Active feeds whose last poll failed.
    pub feeds_failing: u64,
}

static GLOBAL: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    GLOBAL.get_or_init(Metrics::default)
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    if let Ok(mut map) = map.lock() {
        *map.entry(key).or_insert(0) += 1;
    }
}

impl Metrics {
    /// Counts one poll: `outcome` is `fetched`, `not_modified` or `failed` (with its kind).
    pub fn poll(
        &self,
        outcome: &'static str,
        error_kind: Option<&str>,
        new_items: usize,
        new_matches: usize,
    ) {
        bump(&self.polls, outcome);
        if let Some(kind) = error_kind {
            bump(&self.fetch_errors, kind.to_string());
        }
        self.new_items
            .fetch_add(new_items as u64, Ordering::Relaxed);
        self.new_matches
            .fetch_add(new_matches as u64, Ordering::Relaxed);
    }

    /// Counts one delivery attempt to `channel`: `delivered` or `failed`.
    pub fn delivery(&self, channel: &str, outcome: &'static str) {
        bump(&self.deliveries, (channel.to_string(), outcome));
    }

    /// Records how long one poll cycle took.
    pub fn poll_cycle(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        for (bucket, bound) in self.cycle_buckets.iter().zip(CYCLE_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.cycle_count.fetch_add(1, Ordering::Relaxed);
        self.cycle_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of these counters and `stored`.
    pub fn render(&self, stored: &StoredCounts) -> String {
        let mut out = String::new();
        let polls = self.polls.lock().map(|m| m.clone()).unwrap_or_default();
        header(
            &mut out,
            "storywatch_polls_total",
            "counter",
            "Feed polls since start, by outcome.",
        );
        for outcome in ["fetched", "not_modified", "failed"] {
            let n = polls.get(outcome).copied().unwrap_or(0);
            let _ = writeln!(out, "storywatch_polls_total{{outcome=\"{outcome}\"}} {n}");
        }
        header(
            &mut out,
            "storywatch_fetch_errors_total",
            "counter",
            "Failed polls since start, by error kind.",
        );
        for (kind, n) in self
            .fetch_errors
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
        {
            let _ = writeln!(
                out,
                "storywatch_fetch_errors_total{{kind=\"{}\"}} {n}",
                label(&kind)
            );
        }
        header(
            &mut out,
            "storywatch_new_items_total",
            "counter",
            "Items first stored since start.",
        );
        let _ = writeln!(
            out,
            "storywatch_new_items_total {}",
            self.new_items.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "storywatch_new_matches_total",
            "counter",
            "Matches first stored since start.",
        );
        let _ = writeln!(
            out,
            "storywatch_new_matches_total {}",
            self.new_matches.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "storywatch_delivery_attempts_total",
            "counter",
            "Digest delivery attempts since start, by channel and outcome.",
        );
        for ((channel, outcome), n) in self
            .deliveries
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
        {
            let _ = writeln!(
                out,
                "storywatch_delivery_attempts_total{{channel=\"{}\",outcome=\"{outcome}\"}} {n}",
                label(&channel)
            );
        }
        header(
            &mut out,
            "storywatch_poll_cycle_seconds",
            "histogram",
            "Duration of the daemon's poll cycles.",
        );
        for (bucket, bound) in self.cycle_buckets.iter().zip(CYCLE_BUCKETS) {
            let _ = writeln!(
                out,
                "storywatch_poll_cycle_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.cycle_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "storywatch_poll_cycle_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "storywatch_poll_cycle_seconds_sum {}",
            self.cycle_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "storywatch_poll_cycle_seconds_count {count}");

        header(
            &mut out,
            "storywatch_items",
            "gauge",
            "Items in the database.",
        );
        let _ = writeln!(out, "storywatch_items {}", stored.items);
        header(
            &mut out,
            "storywatch_matches",
            "gauge",
            "Matches in the database, by verdict.",
        );
        for (verdict, n) in &stored.matches {
            let _ = writeln!(
                out,
                "storywatch_matches{{verdict=\"{}\"}} {n}",
                label(verdict)
            );
        }
        header(
            &mut out,
            "storywatch_deliveries",
            "gauge",
            "Digest deliveries in the database, by channel and state.",
        );
        for (channel, state, n) in &stored.deliveries {
            let _ = writeln!(
                out,
                "storywatch_deliveries{{channel=\"{}\",state=\"{}\"}} {n}",
                label(channel),
                label(state)
            );
        }
        header(&mut out, "storywatch_feeds", "gauge", "Active feeds.");
        let _ = writeln!(out, "storywatch_feeds {}", stored.feeds);
        header(
            &mut out,
            "storywatch_feeds_failing",
            "gauge",
            "Active feeds whose last poll failed.",
        );
        let _ = writeln!(out, "storywatch_feeds_failing {}", stored.feeds_failing);
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, quote, newline), as the text format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_stored_gauges() {
        let metrics = Metrics::default();
        metrics.poll("fetched", None, 4, 2);
        metrics.poll("failed", Some("timeout"), 0, 0);
        metrics.delivery("file", "delivered");
        metrics.poll_cycle(Duration::from_millis(300));
        let stored = StoredCounts {
            items: 9,
            matches: vec![("follow_up".into(), 3)],
            deliveries: vec![("ops \"team\"".into(), "pending".into(), 1)],
            feeds: 2,
            feeds_failing: 1,
        };
        let text = metrics.render(&stored);
        for line in [
            "storywatch_polls_total{outcome=\"fetched\"} 1",
            "storywatch_polls_total{outcome=\"failed\"} 1",
            "storywatch_fetch_errors_total{kind=\"timeout\"} 1",
            "storywatch_new_items_total 4",
            "storywatch_delivery_attempts_total{channel=\"file\",outcome=\"delivered\"} 1",
            "storywatch_poll_cycle_seconds_bucket{le=\"0.25\"} 0",
            "storywatch_poll_cycle_seconds_bucket{le=\"0.5\"} 1",
            "storywatch_poll_cycle_seconds_count 1",
            "storywatch_matches{verdict=\"follow_up\"} 3",
            "storywatch_deliveries{channel=\"ops \\\"team\\\"\",state=\"pending\"} 1",
            "storywatch_feeds_failing 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }
}
