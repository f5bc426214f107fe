//! When to poll a feed next: its configured interval, adapted to how often it really publishes,
//! never earlier than the server's own hints, with a per-feed jitter; and exponential backoff
//! when it fails.
//!
//! The rules, in order (`docs/fetching.md` explains them for users):
//!
//! 1. **Floor**: a feed is never polled more often than `max(its interval, [fetch] min_interval)`.
//!    The configured interval is what the user promised the publisher, so adaptation only ever
//!    stretches it.
//! 2. **Adaptive** (`[fetch] adaptive = true`): with at least [`MIN_DATED_ITEMS`] dated items, the
//!    interval becomes the median gap between the newest [`RECENT_ITEMS`] publication dates,
//!    clamped to `[floor, max(max_interval, floor)]`. A feed that publishes weekly is then polled
//!    daily rather than every 30 minutes. The median shrugs off one burst or one long pause.
//! 3. **Server hints**: `Retry-After`, `Cache-Control: max-age`, `Expires` and RSS `<ttl>` are
//!    minimum waits, each capped at the ceiling so a "cache for a year" cannot silence a feed.
//! 4. **Jitter**: up to 10 % of the wait (at most 15 minutes) is added, derived from a stable hash
//!    of the feed URL. Feeds configured alike then do not all fire in the same second, and the
//!    same feed gets the same offset every time, so schedules (and tests) are reproducible.
//!    Jitter only ever delays: never earlier than the rules above allow.
//! 5. **Failures**: the interval doubles per consecutive failure up to a 12-hour cap (never below
//!    the interval itself), and a `Retry-After` longer than that is honoured.

use std::hash::Hasher;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use siphasher::sip::SipHasher13;

/// Newest publication dates looked at for the adaptive interval.
pub const RECENT_ITEMS: usize = 20;

/// Fewest dated items for the adaptive interval to apply; fewer say too little.
pub const MIN_DATED_ITEMS: usize = 3;

/// Longest wait between retries of a failing feed (unless `Retry-After` asks for more).
pub const MAX_BACKOFF: Duration = Duration::from_secs(12 * 3600);

/// The most jitter added to any wait.
const MAX_JITTER: Duration = Duration::from_secs(15 * 60);

/// The scheduling settings from `[fetch]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Global floor for every feed's interval.
    pub min_interval: Duration,
    /// Ceiling for the adaptive interval and for server hints.
    pub max_interval: Duration,
    /// Whether the interval follows the feed's publishing rate.
    pub adaptive: bool,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            min_interval: Duration::from_secs(5 * 60),
            max_interval: Duration::from_secs(24 * 3600),
            adaptive: true,
        }
    }
}

impl Schedule {
    /// The shortest interval allowed for a feed configured with `configured`.
    pub fn floor(&self, configured: Duration) -> Duration {
        configured.max(self.min_interval)
    }

    /// The longest interval (and server hint) honoured for a feed configured with `configured`.
    pub fn ceiling(&self, configured: Duration) -> Duration {
        self.max_interval.max(self.floor(configured))
    }

    /// The interval to use: the publishing gap (when known and adaptation is on) clamped
    /// between floor and ceiling, else the floor.
    pub fn interval(&self, configured: Duration, publishing_gap: Option<Duration>) -> Duration {
        let floor = self.floor(configured);
        match publishing_gap {
            Some(gap) if self.adaptive => gap.clamp(floor, self.ceiling(configured)),
            _ => floor,
        }
    }

    /// When a feed polled successfully at `now` is next due.
    pub fn next_after_success(
        &self,
        now: Timestamp,
        url: &str,
        configured: Duration,
        interval: Duration,
        hint: Option<Duration>,
    ) -> Timestamp {
        let ceiling = self.ceiling(configured);
        let wait = interval
            .clamp(self.floor(configured), ceiling)
            .max(hint.unwrap_or(Duration::ZERO).min(ceiling));
        add(now, wait.saturating_add(jitter(url, wait)))
    }

    /// When a feed that has now failed `failures` times in a row is next due: exponential
    /// backoff from its interval, and no earlier than the server's `Retry-After`.
    pub fn next_after_failure(
        &self,
        now: Timestamp,
        url: &str,
        interval: Duration,
        failures: u32,
        retry_after: Option<Duration>,
    ) -> Timestamp {
        let backoff = backoff(interval, failures);
        let cap = MAX_BACKOFF.max(self.max_interval).max(interval);
        let wait = backoff.max(retry_after.unwrap_or(Duration::ZERO).min(cap));
        add(now, wait.saturating_add(jitter(url, wait)))
    }
}

/// The interval doubled per failure, capped at [`MAX_BACKOFF`] (never below the interval).
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.min(10);
    interval
        .saturating_mul(factor)
        .min(MAX_BACKOFF.max(interval))
}

/// The median gap between the newest [`RECENT_ITEMS`] dates, or `None` with fewer than
/// [`MIN_DATED_ITEMS`]. Dates after `now` (publishers with wrong clocks) count as `now`.
pub fn publishing_gap(
    dates: impl IntoIterator<Item = Timestamp>,
    now: Timestamp,
) -> Option<Duration> {
    let mut dates: Vec<i64> = dates.into_iter().map(|d| d.min(now).as_second()).collect();
    if dates.len() < MIN_DATED_ITEMS {
        return None;
    }
    dates.sort_unstable_by(|a, b| b.cmp(a));
    dates.truncate(RECENT_ITEMS);
    let mut gaps: Vec<u64> = dates.windows(2).map(|w| w[0].abs_diff(w[1])).collect();
    gaps.sort_unstable();
    let middle = gaps.len() / 2;
    let median = if gaps.len().is_multiple_of(2) {
        (gaps[middle - 1] + gaps[middle]) / 2
    } else {
        gaps[middle]
    };
    Some(Duration::from_secs(median))
}

/// A stable share of up to 10 % of `wait` (at most 15 minutes) for the feed at `url`.
pub fn jitter(url: &str, wait: Duration) -> Duration {
    // Fixed keys: the offset must not change between runs or Rust releases.
    let mut hasher = SipHasher13::new_with_keys(0x7374_6f72_7977_6174, 0x6368_6a69_7474_6572);
    hasher.write(url.as_bytes());
    let fraction = (hasher.finish() % 10_000) as f64 / 10_000.0;
    (wait / 10).min(MAX_JITTER).mul_f64(fraction)
}

fn add(now: Timestamp, wait: Duration) -> Timestamp {
    SignedDuration::try_from(wait)
        .ok()
        .and_then(|w| now.checked_add(w).ok())
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn schedule() -> Schedule {
        Schedule::default()
    }

    #[test]
    fn jitter_is_stable_bounded_and_differs_between_feeds() {
        let wait = 30 * MIN;
        let a = jitter("https://a.example/feed", wait);
        assert_eq!(a, jitter("https://a.example/feed", wait));
        assert!(a <= wait / 10);
        assert_ne!(a, jitter("https://b.example/feed", wait));
        assert!(jitter("https://a.example/feed", 7 * 24 * 60 * MIN) <= MAX_JITTER);
    }

    #[test]
    fn publishing_gap_is_the_median_of_recent_gaps() {
        let now = ts("2026-01-10T00:00:00Z");
        let hours = |h: &[i64]| -> Vec<Timestamp> {
            h.iter()
                .map(|h| now - SignedDuration::from_hours(*h))
                .collect()
        };
        // Every 6 hours, with one long pause: the median ignores the pause.
        assert_eq!(
            publishing_gap(hours(&[0, 6, 12, 18, 200]), now),
            Some(Duration::from_secs(6 * 3600))
        );
        assert_eq!(publishing_gap(hours(&[0, 24]), now), None);
        // A date in the future counts as now.
        assert_eq!(
            publishing_gap(hours(&[-48, 0, 1, 2]), now),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn interval_never_drops_below_the_configured_floor() {
        let s = schedule();
        // A feed publishing every minute stays at its configured 30 minutes.
        assert_eq!(s.interval(30 * MIN, Some(MIN)), 30 * MIN);
        // A weekly feed stretches, up to max_interval.
        assert_eq!(s.interval(30 * MIN, Some(7 * 24 * 60 * MIN)), 24 * 60 * MIN);
        assert_eq!(s.interval(30 * MIN, Some(3 * 60 * MIN)), 3 * 60 * MIN);
        // min_interval raises a shorter configured interval.
        assert_eq!(s.interval(2 * MIN, None), 5 * MIN);
        // Off: the floor, whatever the feed does.
        let off = Schedule {
            adaptive: false,
            ..s
        };
        assert_eq!(off.interval(30 * MIN, Some(3 * 60 * MIN)), 30 * MIN);
        // A configured interval above max_interval wins.
        assert_eq!(s.interval(48 * 60 * MIN, Some(MIN)), 48 * 60 * MIN);
    }

    #[test]
    fn hints_are_minimums_capped_at_the_ceiling() {
        let s = schedule();
        let now = ts("2026-01-10T00:00:00Z");
        let url = "https://a.example/feed";
        let wait = |hint| {
            let next = s.next_after_success(now, url, 30 * MIN, 30 * MIN, hint);
            Duration::try_from(next.duration_since(now)).unwrap()
        };
        let base = wait(None);
        assert!(base >= 30 * MIN && base <= 33 * MIN, "{base:?}");
        let hinted = wait(Some(2 * 60 * MIN));
        assert!(hinted >= 2 * 60 * MIN && hinted <= 2 * 60 * MIN + 12 * MIN);
        let capped = wait(Some(365 * 24 * 60 * MIN));
        assert!(capped >= 24 * 60 * MIN && capped <= 24 * 60 * MIN + MAX_JITTER);
        // A hint shorter than the interval changes nothing.
        assert_eq!(wait(Some(MIN)), base);
    }

    #[test]
    fn failures_back_off_exponentially_and_honour_retry_after() {
        let s = schedule();
        let now = ts("2026-01-10T00:00:00Z");
        let url = "https://a.example/feed";
        let wait = |failures, retry| {
            let next = s.next_after_failure(now, url, 30 * MIN, failures, retry);
            next.duration_since(now).as_secs()
        };
        assert!((3600..3600 + 360).contains(&wait(1, None)));
        assert!((7200..7200 + 720).contains(&wait(2, None)));
        assert!((43_200..43_200 + 900).contains(&wait(30, None)));
        assert!((5 * 3600..5 * 3600 + 900).contains(&wait(1, Some(5 * 60 * MIN))));
        assert_eq!(backoff(24 * 60 * MIN, 5), 24 * 60 * MIN);
    }
}
