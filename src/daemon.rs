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
use tracing::{Instrument, error, info, info_span, warn};

use crate::config::Config;
use crate::digest::{latest_slot_at_or_before, next_slot_after};
use crate::pipeline::{self, FeedOutcome, PollContext, Stories};
use crate::service::Notifier;
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

/// Runs `work` (a pass of deliveries) to its end, feeding the watchdog meanwhile for at most
/// `bound`, the longest the work may legitimately take: a slow receiver is not a stalled
/// daemon, but work that overruns its own bound is, and systemd gets to restart it. `None`
/// when shutdown was asked for first (the work is dropped; its deliveries stay pending).
async fn fed_while_bounded<F: std::future::Future>(
    work: F,
    bound: Duration,
    heartbeat: Duration,
    notifier: &Notifier,
    shutdown: &mut Shutdown,
) -> Option<F::Output> {
    let started = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval(heartbeat);
    tokio::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => return Some(output),
            _ = ticker.tick() => {
                if started.elapsed() < bound {
                    notifier.watchdog();
                }
            }
            _ = shutdown.requested() => return None,
        }
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
    if let (Some(last), Some(slot)) = (last_digest, latest_slot_at_or_before(now, at, zone))
        && last < slot
    {
        return now;
    }
    next_slot_after(now, at, zone).unwrap_or_else(|| now + jiff::SignedDuration::from_hours(24))
}

/// Loads the configuration and builds the stories again; the daemon calls it on reload.
pub type Loader = Box<dyn Fn() -> anyhow::Result<(Config, Stories)> + Send + Sync>;

/// The daemon's running state: what a reload replaces.
struct Running {
    config: Config,
    stories: Arc<Stories>,
    ctx: PollContext,
}

impl Running {
    fn new(config: Config, stories: Stories, store: &Arc<Mutex<Store>>) -> anyhow::Result<Running> {
        lock(store)?.sync_feeds(&config.feeds)?;
        let stories = Arc::new(stories);
        let ctx = PollContext::new(
            pipeline::fetcher(&config)?,
            Arc::clone(store),
            Arc::clone(&stories),
        )
        .configured(&config.fetch);
        Ok(Running {
            config,
            stories,
            ctx,
        })
    }
}

fn lock(store: &Arc<Mutex<Store>>) -> anyhow::Result<std::sync::MutexGuard<'_, Store>> {
    store
        .lock()
        .map_err(|_| anyhow::anyhow!("database lock poisoned by an earlier panic"))
}

/// How the outside world steers a running daemon.
pub struct Control {
    /// Fires once to stop (SIGINT, SIGTERM).
    pub shutdown: Shutdown,
    /// Changes each time a reload is asked for (SIGHUP).
    pub reload: watch::Receiver<u64>,
    /// Reads the configuration and stories again on reload.
    pub reload_with: Loader,
    /// Tells systemd how the daemon is doing.
    pub notifier: Notifier,
}

/// Runs the daemon with `config` and `stories` until shutdown. On each reload the configuration
/// and stories are read again; a reload that fails is logged and the running ones kept.
pub async fn run(
    config: Config,
    stories: Stories,
    store: Store,
    control: Control,
) -> anyhow::Result<()> {
    let Control {
        mut shutdown,
        mut reload,
        reload_with: load,
        notifier,
    } = control;
    let database = store.path().to_path_buf();
    let store = Arc::new(Mutex::new(store));
    let mut running = Running::new(config, stories, &store)?;
    // The review page ([web]) shares the store and stops on the same shutdown as the loop; it
    // shows the stories through a handle each reload updates.
    let views = crate::web::StoryViews::of(&running.stories);
    let web =
        crate::web::start_for_daemon(&running.config, &views, &store, shutdown.clone()).await?;

    let last = lock(&store)?.last_digest_run()?;
    let mut digest_due = next_digest_due(&running.config, last, Timestamp::now());
    info!(feeds = running.config.feeds.len(), next_digest = %digest_due, "storywatch running");
    notifier.ready(&format!(
        "watching {} feeds; next digest {digest_due}",
        running.config.feeds.len()
    ));

    // Deliveries left pending by a previous run (crash or failure) go out first; the claims a
    // killed process left on them are freed, those of a `digest --now` still sending are not.
    // Each is abandoned safely on shutdown: it stays pending and the next start sends it.
    lock(&store)?
        .release_orphaned_claims(Timestamp::now(), crate::digest::notify::process_running)?;
    let heartbeat = notifier
        .watchdog_interval()
        .unwrap_or(MAX_SLEEP)
        .min(MAX_SLEEP);
    let resumed = fed_while_bounded(
        pipeline::deliver_pending(&running.config, &store),
        pipeline::delivery_pass_bound(&running.config),
        heartbeat,
        &notifier,
        &mut shutdown,
    )
    .await;
    match resumed {
        Some(result) => {
            result?;
        }
        None => {
            notifier.stopping();
            info!("storywatch stopped");
            return Ok(());
        }
    }

    let mut reload_requested = false;
    loop {
        notifier.watchdog();
        if shutdown.is_requested() {
            break;
        }
        if reload_requested || reload.has_changed().unwrap_or(false) {
            reload_requested = false;
            reload.borrow_and_update();
            notifier.reloading();
            match load().and_then(|(config, stories)| {
                if config.storage.database != database {
                    warn!("[storage] database changed; the new path takes effect after a restart");
                }
                Running::new(config, stories, &store)
            }) {
                Ok(new) => {
                    running = new;
                    views.replace(&running.stories);
                    let last = lock(&store)?.last_digest_run()?;
                    digest_due = next_digest_due(&running.config, last, Timestamp::now());
                    info!(feeds = running.config.feeds.len(), "configuration reloaded");
                    notifier.ready(&format!(
                        "configuration reloaded; watching {} feeds; next digest {digest_due}",
                        running.config.feeds.len()
                    ));
                }
                Err(err) => {
                    let err = format!("{err:#}");
                    error!(error = %err, "reload rejected; keeping the running configuration");
                    // `systemctl reload` cannot fail a reload that was only signalled, so the
                    // status line is where a person sees that the edit did not take.
                    notifier.ready(&format!(
                        "reload rejected, still running the previous configuration: {err}"
                    ));
                }
            }
        }

        let now = Timestamp::now();
        let due: Vec<_> = lock(&store)?
            .active_feeds()?
            .into_iter()
            .filter(|f| f.next_poll_at <= now)
            .collect();
        if !due.is_empty() {
            let count = due.len();
            let cycle_started = std::time::Instant::now();
            let span = info_span!("poll_cycle", feeds = count);
            let work = pipeline::poll_feeds(
                &running.ctx,
                pipeline::with_intervals(due, &running.config.feeds),
                running.config.fetch.concurrency,
            )
            .instrument(span);
            tokio::pin!(work);
            // The watchdog is fed while feeds keep completing: a cycle that stops making
            // progress for a whole watchdog period gets the service restarted.
            let mut ticker = tokio::time::interval(heartbeat);
            let mut seen_progress = running.ctx.progress();
            let reports = loop {
                tokio::select! {
                    result = &mut work => break Some(result),
                    _ = ticker.tick() => {
                        let progress = running.ctx.progress();
                        if progress != seen_progress {
                            seen_progress = progress;
                            notifier.watchdog();
                        }
                    }
                    _ = shutdown.requested() => break None,
                }
            };
            crate::metrics::global().poll_cycle(cycle_started.elapsed());
            match reports {
                None => break,
                Some(Ok(reports)) => {
                    let failed = reports
                        .iter()
                        .filter(|r| matches!(r.outcome, FeedOutcome::Failed { .. }))
                        .count();
                    let matches: usize = reports
                        .iter()
                        .map(|r| match r.outcome {
                            FeedOutcome::Fetched { new_matches, .. } => new_matches,
                            _ => 0,
                        })
                        .sum();
                    notifier.status(&format!("polled {count} feeds ({failed} failed), {matches} new matches; next digest {digest_due}"));
                }
                Some(Err(err)) => error!(error = %format!("{err:#}"), "poll cycle failed"),
            }
            notifier.watchdog();
        }

        if Timestamp::now() >= digest_due {
            if let Err(err) =
                pipeline::build_digest(&running.config, &running.stories, &store).await
            {
                error!(error = %format!("{err:#}"), "digest failed");
            }
            digest_due = next_digest_due(&running.config, Some(Timestamp::now()), Timestamp::now());
            info!(next_digest = %digest_due, "next digest scheduled");
        }
        let delivered = fed_while_bounded(
            pipeline::deliver_pending(&running.config, &store),
            pipeline::delivery_pass_bound(&running.config),
            heartbeat,
            &notifier,
            &mut shutdown,
        )
        .await;
        match delivered {
            None => break,
            Some(Err(err)) => error!(error = %format!("{err:#}"), "delivery failed"),
            Some(Ok(_)) => {}
        }

        let (next_feed, next_delivery) = {
            let guard = lock(&store)?;
            (
                guard.active_feeds()?.iter().map(|f| f.next_poll_at).min(),
                guard.next_delivery_due(Timestamp::now())?,
            )
        };
        let wake = [next_feed, next_delivery]
            .into_iter()
            .flatten()
            .fold(digest_due, Timestamp::min);
        let until = wake.duration_since(Timestamp::now());
        let sleep = Duration::try_from(until)
            .unwrap_or(Duration::ZERO)
            .min(heartbeat);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            // `changed` marks the new value seen, so remember the request for the next turn.
            _ = reload.changed() => reload_requested = true,
            _ = shutdown.requested() => break,
        }
    }
    notifier.stopping();
    if let Some(web) = web
        && tokio::time::timeout(Duration::from_secs(5), web)
            .await
            .is_err()
    {
        warn!("review page did not stop within 5s; leaving it");
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

    #[tokio::test(start_paused = true)]
    async fn slow_deliveries_feed_the_watchdog_only_within_their_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let notifier = Notifier::to_socket(&path, Duration::from_secs(20));
        let (_stop, mut shutdown) = Shutdown::new();
        let slow = async {
            tokio::time::sleep(Duration::from_secs(100)).await;
            "delivered"
        };
        let out = fed_while_bounded(
            slow,
            Duration::from_secs(30),
            Duration::from_secs(10),
            &notifier,
            &mut shutdown,
        )
        .await;
        assert_eq!(out, Some("delivered"));
        let mut buf = [0u8; 64];
        let mut fed = 0;
        while let Ok(n) = listener.recv(&mut buf) {
            assert_eq!(&buf[..n], b"WATCHDOG=1");
            fed += 1;
        }
        // Ticks at 0, 10 and 20 s fall within the 30 s bound; those after it do not, so a
        // pass that overruns its bound lets systemd restart the service.
        assert_eq!(fed, 3);

        let (stop, mut shutdown) = Shutdown::new();
        stop.send(true).unwrap();
        let never = std::future::pending::<()>();
        let out = fed_while_bounded(
            never,
            Duration::from_secs(30),
            Duration::from_secs(10),
            &notifier,
            &mut shutdown,
        )
        .await;
        assert_eq!(out, None, "shutdown ends the wait");
    }

    fn config_with(digest: &str) -> Config {
        config_in(digest, "UTC")
    }

    fn config_in(digest: &str, zone: &str) -> Config {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let text = format!(
            "[story]\nname = \"s\"\nseeds = \"../seeds\"\n[digest]\n{digest}\ntimezone = \"{zone}\"\n"
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

    fn london(at: &str) -> Config {
        config_in(&format!("at = \"{at}\""), "Europe/London")
    }

    /// Each digest sent on time, then the next one asked for: the daily chain of due times.
    fn chain(config: &Config, from: Timestamp, days: usize) -> Vec<Timestamp> {
        let mut due = vec![from];
        for _ in 0..days {
            let last = *due.last().unwrap();
            due.push(next_digest_due(config, Some(last), last));
        }
        due
    }

    #[test]
    fn the_daily_slot_keeps_its_local_time_across_both_dst_changes() {
        // Spring: 29 Mar 2026 London goes GMT → BST; 07:00 local is 07:00 then 06:00 UTC.
        assert_eq!(
            chain(&london("07:00"), ts("2026-03-28T07:00:00Z"), 2),
            [
                ts("2026-03-28T07:00:00Z"),
                ts("2026-03-29T06:00:00Z"),
                ts("2026-03-30T06:00:00Z")
            ]
        );
        // Autumn: 25 Oct 2026 BST → GMT; 07:00 local is 06:00 then 07:00 UTC.
        assert_eq!(
            chain(&london("07:00"), ts("2026-10-24T06:00:00Z"), 2),
            [
                ts("2026-10-24T06:00:00Z"),
                ts("2026-10-25T07:00:00Z"),
                ts("2026-10-26T07:00:00Z")
            ]
        );
        // A slot in the spring gap goes out just after it; one in the repeated autumn hour once.
        assert_eq!(
            chain(&london("01:30"), ts("2026-03-28T01:30:00Z"), 2),
            [
                ts("2026-03-28T01:30:00Z"),
                ts("2026-03-29T01:30:00Z"),
                ts("2026-03-30T00:30:00Z")
            ]
        );
        assert_eq!(
            chain(&london("01:30"), ts("2026-10-24T00:30:00Z"), 2),
            [
                ts("2026-10-24T00:30:00Z"),
                ts("2026-10-25T00:30:00Z"),
                ts("2026-10-26T01:30:00Z")
            ]
        );
        // Restarted in the repeated hour, after its second 01:30: the first one served the day.
        assert_eq!(
            next_digest_due(
                &london("01:30"),
                Some(ts("2026-10-25T00:30:00Z")),
                ts("2026-10-25T01:45:00Z")
            ),
            ts("2026-10-26T01:30:00Z")
        );
    }

    #[test]
    fn a_restart_across_a_dst_change_sends_one_catch_up() {
        for (last, down_until, next) in [
            // Down over the spring change.
            (
                "2026-03-27T07:00:00Z",
                "2026-03-29T12:00:00Z",
                "2026-03-30T06:00:00Z",
            ),
            // Down over the autumn change.
            (
                "2026-10-23T06:00:00Z",
                "2026-10-25T12:00:00Z",
                "2026-10-26T07:00:00Z",
            ),
        ] {
            let config = london("07:00");
            let now = ts(down_until);
            assert_eq!(next_digest_due(&config, Some(ts(last)), now), now, "{last}");
            // Once it is sent, the next is the following morning, local time.
            assert_eq!(next_digest_due(&config, Some(now), now), ts(next), "{last}");
            // Restarted before that morning: nothing more is owed.
            let later = ts(down_until)
                .checked_add(jiff::SignedDuration::from_hours(6))
                .unwrap();
            assert_eq!(
                next_digest_due(&config, Some(now), later),
                ts(next),
                "{last}"
            );
        }
    }
}
