//! The daemon: one loop that polls feeds when they are due, builds the digest at its time and
//! retries deliveries, until SIGINT or SIGTERM.
//!
//! One loop, not a task per feed, keeps the structure plain: each turn computes what is due,
//! does it (fetches run concurrently inside [`pipeline::poll_feeds`], bounded by
//! `[fetch] concurrency`), then sleeps until the next thing is due. Shutdown is checked at every
//! await point: an in-flight poll is abandoned (each feed's writes are one transaction, so a
//! half-done poll stores nothing) and the loop returns.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;
use tracing::{Instrument, error, info, info_span};

use crate::config::Config;
use crate::digest::{latest_slot_at_or_before, next_slot_after};
use crate::pipeline::{self, PollContext, Story};
use crate::store::Store;

/// Longest sleep between turns, so deliveries are retried and config changes to intervals
/// take effect without a wake-up source of their own.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// A handle that tells the daemon to stop.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A shutdown handle and the sender that triggers it.
    pub fn new() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    /// Resolves once shutdown was requested.
    pub async fn requested(&mut self) {
        while !*self.0.borrow() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }

    /// Whether shutdown was requested.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }
}

/// When the next digest is due. A digest is owed now if the last one is older than the latest
/// slot (the daemon was down at digest time: it is sent late, once). With no digest yet, the
/// first one is due at the next slot. With `[digest] every`, slots are `every` after the last
/// digest (the first one `every` after start), and a missed one is likewise sent once.
pub fn next_digest_due(
    config: &Config,
    last_digest: Option<Timestamp>,
    now: Timestamp,
) -> Timestamp {
    if let Some(every) = config.digest.every {
        let every =
            jiff::SignedDuration::try_from(every).unwrap_or(jiff::SignedDuration::from_hours(24));
        let from = last_digest.unwrap_or(now);
        let due = from.checked_add(every).unwrap_or(now);
        return due.max(now);
    }
    let at = config.digest.at;
    let zone = &config.digest.timezone;
    if let (Some(last), Some(slot)) = (last_digest, latest_slot_at_or_before(now, at, zone)) {
        if last < slot {
            return now;
        }
    }
    next_slot_after(now, at, zone).unwrap_or_else(|| now + jiff::SignedDuration::from_hours(24))
}

/// Runs the daemon until `shutdown` fires.
pub async fn run(
    config: Config,
    story: Story,
    store: Store,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    let mut store = store;
    store.sync_feeds(&config.feeds)?;
    let store = Arc::new(Mutex::new(store));
    let story = Arc::new(story);
    let ctx = PollContext {
        fetcher: pipeline::fetcher(&config)?,
        store: Arc::clone(&store),
        story: Arc::clone(&story),
    };

    let last = store
        .lock()
        .map_err(|_| anyhow::anyhow!("database lock poisoned"))?
        .last_digest()?;
    let mut digest_due = next_digest_due(&config, last.map(|d| d.created_at), Timestamp::now());
    info!(feeds = config.feeds.len(), next_digest = %digest_due, "storywatch running");

    // Deliveries left pending by a previous run (crash or failure) go out first. Each is
    // abandoned safely on shutdown: it stays pending and the next start sends it.
    tokio::select! {
        result = pipeline::deliver_pending(&config, &store) => { result?; }
        _ = shutdown.requested() => {
            info!("storywatch stopped");
            return Ok(());
        }
    }

    loop {
        if shutdown.is_requested() {
            break;
        }
        let now = Timestamp::now();
        let due: Vec<_> = {
            let guard = store
                .lock()
                .map_err(|_| anyhow::anyhow!("database lock poisoned"))?;
            guard
                .active_feeds()?
                .into_iter()
                .filter(|f| f.next_poll_at <= now)
                .collect()
        };
        if !due.is_empty() {
            let span = info_span!("poll_cycle", feeds = due.len());
            let work = pipeline::poll_feeds(
                &ctx,
                pipeline::with_intervals(due, &config.feeds),
                config.fetch.concurrency,
            )
            .instrument(span);
            tokio::select! {
                result = work => {
                    if let Err(err) = result {
                        error!(error = %err, "poll cycle failed");
                    }
                }
                _ = shutdown.requested() => break,
            }
        }

        if Timestamp::now() >= digest_due {
            match pipeline::build_digest(&config, &story, &store).await {
                Ok(_) => {}
                Err(err) => error!(error = %format!("{err:#}"), "digest failed"),
            }
            digest_due = next_digest_due(&config, Some(Timestamp::now()), Timestamp::now());
            info!(next_digest = %digest_due, "next digest scheduled");
        }
        tokio::select! {
            result = pipeline::deliver_pending(&config, &store) => {
                if let Err(err) = result {
                    error!(error = %format!("{err:#}"), "delivery failed");
                }
            }
            _ = shutdown.requested() => break,
        }

        let (next_feed, next_delivery) = {
            let guard = store
                .lock()
                .map_err(|_| anyhow::anyhow!("database lock poisoned"))?;
            (
                guard.active_feeds()?.iter().map(|f| f.next_poll_at).min(),
                guard.next_delivery_due()?,
            )
        };
        let wake = [next_feed, next_delivery]
            .into_iter()
            .flatten()
            .fold(digest_due, Timestamp::min);
        let until = wake.duration_since(Timestamp::now());
        let sleep = Duration::try_from(until)
            .unwrap_or(Duration::ZERO)
            .min(MAX_SLEEP);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = shutdown.requested() => break,
        }
    }
    info!("storywatch stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigOrigin};

    fn config() -> Config {
        config_with("at = \"07:00\"")
    }

    fn config_with(digest: &str) -> Config {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let text = format!(
            "[story]\nname = \"s\"\nseeds = \"../seeds\"\n[digest]\n{digest}\ntimezone = \"UTC\"\n"
        );
        Config::parse(&text, ConfigOrigin::Bundled, &base).unwrap()
    }

    #[test]
    fn every_counts_from_the_last_digest_and_catches_up_once() {
        let config = config_with("every = \"12h\"");
        let now = ts("2026-01-10T09:00:00Z");
        assert_eq!(
            next_digest_due(&config, None, now),
            ts("2026-01-10T21:00:00Z")
        );
        assert_eq!(
            next_digest_due(&config, Some(ts("2026-01-10T08:00:00Z")), now),
            ts("2026-01-10T20:00:00Z")
        );
        // Down for three periods: one digest now.
        assert_eq!(
            next_digest_due(&config, Some(ts("2026-01-08T08:00:00Z")), now),
            now
        );
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn first_digest_waits_for_the_next_slot() {
        assert_eq!(
            next_digest_due(&config(), None, ts("2026-01-10T09:00:00Z")),
            ts("2026-01-11T07:00:00Z")
        );
    }

    #[test]
    fn missed_digest_is_sent_late_once() {
        let now = ts("2026-01-10T09:00:00Z");
        // Last digest two days ago: one catch-up digest now, not one per missed day.
        assert_eq!(
            next_digest_due(&config(), Some(ts("2026-01-08T07:00:00Z")), now),
            now
        );
        // After it, the next is tomorrow's slot.
        assert_eq!(
            next_digest_due(&config(), Some(now), now),
            ts("2026-01-11T07:00:00Z")
        );
    }
}
