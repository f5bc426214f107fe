//! One poll of one feed through every stage: fetch → parse → match → store; and the digest step:
//! build → store → deliver. `poll --once`, `digest --now` and the daemon all run these same
//! functions, so what the tests exercise is what the service does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{Instrument, info, info_span, warn};

use crate::bundled;
use crate::config::{Config, FeedConfig, FetchConfig, NotifyConfig, SeedSource, StoryConfig};
use crate::digest::{self, RenderContext};
use crate::feeds::schedule::{self, Schedule};
use crate::feeds::{FetchError, FetchOutcome, FetchSettings, Fetcher, parse_feed};
use crate::item::Item;
use crate::store::{DigestRow, FeedRow, FetchedPoll, Store, StoreError};
use crate::story::seeds::load_seed_files;
use crate::story::{MatchInput, Profile, Verdict, load_seeds};

/// The `User-Agent` storywatch sends unless the config overrides it.
pub const USER_AGENT: &str = concat!(
    "storywatch/",
    env!("CARGO_PKG_VERSION"),
    " (+https://crates.io/crates/storywatch)"
);

/// After this many failed attempts a delivery is given up and marked failed.
pub const MAX_DELIVERY_ATTEMPTS: u32 = 8;

/// The story as the pipeline uses it: its name and built profile.
#[derive(Debug, Clone)]
pub struct Story {
    /// Display name, also the key its matches are stored under.
    pub name: String,
    /// The profile built from the seeds.
    pub profile: Profile,
}

impl Story {
    /// Loads the seeds and builds the profile.
    pub fn load(config: &StoryConfig) -> anyhow::Result<Story> {
        use anyhow::Context as _;
        let (seeds, from) = match &config.seeds {
            SeedSource::Folder(folder) => (load_seeds(folder)?, folder.display().to_string()),
            SeedSource::Bundled => (
                load_seed_files(bundled::SEED_FILES)?,
                "the bundled seeds".to_string(),
            ),
        };
        let profile = Profile::build(seeds, &config.tuning)
            .with_context(|| format!("building the profile from {from}"))?;
        Ok(Story {
            name: config.name.clone(),
            profile,
        })
    }

    /// The verdict for one item.
    pub fn classify(&self, item: &Item) -> Verdict {
        self.profile.classify(&MatchInput {
            title: &item.title,
            summary: &item.summary,
            content: &item.content,
            published: item.published,
        })
    }
}

/// Builds the fetcher the `[fetch]` section describes.
pub fn fetcher(config: &Config) -> anyhow::Result<Fetcher> {
    let settings = FetchSettings {
        timeout: config.fetch.timeout,
        connect_timeout: config.fetch.connect_timeout,
        max_body_bytes: config.fetch.max_body_bytes,
        allow_private_networks: config.fetch.allow_private_networks,
        user_agent: config
            .fetch
            .user_agent
            .clone()
            .unwrap_or_else(|| USER_AGENT.to_string()),
    };
    Ok(Fetcher::new(settings)?)
}

/// What one poll of one feed came to.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedOutcome {
    /// A body was fetched and parsed.
    Fetched {
        /// Entries in the feed.
        items: usize,
        /// Entries not stored before.
        new_items: usize,
        /// Of those, how many matched the story.
        new_matches: usize,
        /// Of the new entries, how many were a first poll's backlog (stored, not matched).
        background: usize,
    },
    /// 304 Not Modified.
    NotModified,
    /// The poll failed; the feed backs off.
    Failed {
        /// Stable kind (`timeout`, `http_status`, `parse`, …).
        kind: String,
        /// What happened, for a person.
        message: String,
    },
}

/// One line of `poll --once` output.
#[derive(Debug, Clone)]
pub struct FeedReport {
    /// The feed's URL.
    pub url: String,
    /// What happened.
    pub outcome: FeedOutcome,
}

/// How polls are paced and what a first poll keeps: the scheduling part of `[fetch]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    /// Intervals, hints and backoff.
    pub schedule: Schedule,
    /// Most fetches to one host at once.
    pub per_host: usize,
    /// On a first poll, items older than this are background; `None` keeps all as new.
    pub backlog_max_age: Option<Duration>,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            schedule: Schedule::default(),
            per_host: 2,
            backlog_max_age: Some(Duration::from_secs(7 * 86_400)),
        }
    }
}

impl PollPolicy {
    /// The policy `[fetch]` describes.
    pub fn from_config(fetch: &FetchConfig) -> PollPolicy {
        PollPolicy {
            schedule: Schedule {
                min_interval: fetch.min_interval,
                max_interval: fetch.max_interval,
                adaptive: fetch.adaptive,
            },
            per_host: fetch.per_host,
            backlog_max_age: fetch.backlog_max_age,
        }
    }
}

/// Shared handles the poll tasks use.
#[derive(Clone)]
pub struct PollContext {
    /// The HTTP client.
    pub fetcher: Fetcher,
    /// The database, used from blocking tasks.
    pub store: Arc<Mutex<Store>>,
    /// The story items are matched against.
    pub story: Arc<Story>,
    /// Feeds finished since start; the daemon's watchdog watches it move.
    pub completed: Arc<std::sync::atomic::AtomicU64>,
    /// Pacing and backlog rules.
    pub policy: PollPolicy,
}

impl PollContext {
    /// Handles for polling `story` into `store` with `fetcher`.
    pub fn new(fetcher: Fetcher, store: Arc<Mutex<Store>>, story: Arc<Story>) -> PollContext {
        PollContext {
            fetcher,
            store,
            story,
            completed: Arc::default(),
            policy: PollPolicy::default(),
        }
    }

    /// The same handles with the pacing and backlog rules of `[fetch]`.
    pub fn configured(mut self, fetch: &FetchConfig) -> PollContext {
        self.policy = PollPolicy::from_config(fetch);
        self
    }

    /// How many feed polls have finished so far.
    pub fn progress(&self) -> u64 {
        self.completed.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Runs a blocking store operation off the async threads.
async fn with_store<T: Send + 'static>(
    store: &Arc<Mutex<Store>>,
    work: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> anyhow::Result<T> {
    let store = Arc::clone(store);
    let result = tokio::task::spawn_blocking(move || {
        let mut guard = store
            .lock()
            .map_err(|_| anyhow::anyhow!("database lock poisoned by an earlier panic"))?;
        work(&mut guard).map_err(anyhow::Error::from)
    })
    .await??;
    Ok(result)
}

/// When a feed is next due after `failures` consecutive failures: its interval, doubled per
/// failure, capped at [`schedule::MAX_BACKOFF`] (but never below the interval itself). Without jitter or
/// server hints; [`Schedule`] adds those.
pub fn next_poll_time(now: Timestamp, interval: Duration, failures: u32) -> Timestamp {
    let wait = schedule::backoff(interval, failures);
    let wait = jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::from_hours(12));
    now.checked_add(wait).unwrap_or(now)
}

/// Polls one feed: fetch, parse, classify, store. Never fails as a whole: every problem ends as
/// [`FeedOutcome::Failed`] recorded in the feed's state (only a database failure is returned).
///
/// `interval` is the feed's configured interval; the policy in `ctx` turns it into the next due
/// time (adaptive interval, server hints, jitter, backoff). A 304 parses nothing and writes only
/// the feed's row. A 410 Gone disables the feed.
pub async fn poll_feed(
    ctx: &PollContext,
    feed: FeedRow,
    interval: Duration,
) -> anyhow::Result<FeedReport> {
    let span = info_span!("poll", feed = %feed.url);
    async move {
        let now = Timestamp::now();
        let schedule = ctx.policy.schedule;
        // What the schedule settled on last time, re-clamped in case the config changed since.
        let settled = schedule.interval(interval, feed.interval);
        let fetched = ctx.fetcher.fetch(&feed.url, &feed.validators).await;
        let outcome = match fetched {
            Ok(FetchOutcome::NotModified { cache }) => {
                let next = schedule.next_after_success(
                    now,
                    &feed.url,
                    interval,
                    settled,
                    cache.min_wait(),
                );
                with_store(&ctx.store, move |s| {
                    s.record_not_modified(feed.id, now, next)
                })
                .await?;
                FeedOutcome::NotModified
            }
            Ok(FetchOutcome::Fetched {
                body,
                content_type,
                validators,
                final_url,
                moved_permanently_to,
                cache,
            }) => match parse_feed(&body, content_type.as_deref(), &final_url) {
                Ok(parsed) => {
                    drop(body);
                    let total = parsed.items.len();
                    let gap = schedule::publishing_gap(
                        parsed.items.iter().filter_map(|i| i.published),
                        now,
                    );
                    let adapted = schedule.interval(interval, gap);
                    let hint = cache.min_wait().max(parsed.ttl);
                    let next = schedule.next_after_success(now, &feed.url, interval, adapted, hint);
                    let background_before = if feed.first_poll {
                        ctx.policy.backlog_max_age.and_then(|age| {
                            jiff::SignedDuration::try_from(age)
                                .ok()
                                .and_then(|age| now.checked_sub(age).ok())
                        })
                    } else {
                        None
                    };
                    let classified: Vec<(Item, Verdict)> = parsed
                        .items
                        .into_iter()
                        .map(|item| {
                            let verdict = ctx.story.classify(&item);
                            (item, verdict)
                        })
                        .collect();
                    let story = ctx.story.name.clone();
                    let counts = with_store(&ctx.store, move |s| {
                        let counts = s.record_fetched(&FetchedPoll {
                            feed_id: feed.id,
                            story: &story,
                            feed_title: parsed.title.as_deref(),
                            validators: &validators,
                            items: &classified,
                            now,
                            next_poll_at: next,
                            background_before,
                            interval: Some(adapted),
                        })?;
                        if let Some(new_url) = moved_permanently_to {
                            s.record_moved(feed.id, &new_url)?;
                        }
                        Ok(counts)
                    })
                    .await?;
                    info!(
                        items = total,
                        new = counts.new_items,
                        background = counts.background,
                        matches = counts.new_matches,
                        next = %next,
                        "polled"
                    );
                    FeedOutcome::Fetched {
                        items: total,
                        new_items: counts.new_items,
                        new_matches: counts.new_matches,
                        background: counts.background,
                    }
                }
                Err(err) => {
                    failed(ctx, &feed, settled, now, "parse", err.to_string(), None).await?
                }
            },
            Err(err) => {
                let gone = matches!(err, FetchError::HttpStatus { status: 410, .. });
                let outcome = failed(
                    ctx,
                    &feed,
                    settled,
                    now,
                    err.kind(),
                    err.to_string(),
                    err.retry_after(),
                )
                .await?;
                if gone {
                    let reason = format!(
                        "410 Gone at {}: the publisher removed this feed; remove it from the \
                         config or run `storywatch feeds enable {}` to try again",
                        now.strftime("%Y-%m-%d"),
                        feed.config_url
                    );
                    warn!(%reason, "feed disabled");
                    let id = feed.id;
                    with_store(&ctx.store, move |s| s.disable_feed(id, &reason, now)).await?;
                }
                outcome
            }
        };
        Ok(FeedReport {
            url: feed.url.clone(),
            outcome,
        })
    }
    .instrument(span)
    .await
}

async fn failed(
    ctx: &PollContext,
    feed: &FeedRow,
    interval: Duration,
    now: Timestamp,
    kind: &str,
    message: String,
    retry_after: Option<Duration>,
) -> anyhow::Result<FeedOutcome> {
    warn!(kind, error = %message, "poll failed");
    let next = ctx.policy.schedule.next_after_failure(
        now,
        &feed.url,
        interval,
        feed.consecutive_failures + 1,
        retry_after,
    );
    let (id, kind_owned, message_owned) = (feed.id, kind.to_string(), message.clone());
    with_store(&ctx.store, move |s| {
        s.record_failure(id, &kind_owned, &message_owned, now, next)
    })
    .await?;
    Ok(FeedOutcome::Failed {
        kind: kind.to_string(),
        message,
    })
}

/// The politeness key of a feed URL: its host name, without port (one server, one limit).
fn host_key(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default()
}

/// Polls `feeds` with at most `concurrency` fetches at once, and at most the policy's
/// `per_host` to any one host; one report per feed, in the order given. One feed's failure
/// never stops the others.
pub async fn poll_feeds(
    ctx: &PollContext,
    feeds: Vec<(FeedRow, Duration)>,
    concurrency: usize,
) -> anyhow::Result<Vec<FeedReport>> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut hosts: std::collections::HashMap<String, Arc<Semaphore>> =
        std::collections::HashMap::new();
    let per_host = ctx.policy.per_host.max(1);
    let mut tasks = JoinSet::new();
    for (index, (feed, interval)) in feeds.into_iter().enumerate() {
        let ctx = ctx.clone();
        let permits = Arc::clone(&permits);
        let host = Arc::clone(
            hosts
                .entry(host_key(&feed.url))
                .or_insert_with(|| Arc::new(Semaphore::new(per_host))),
        );
        tasks.spawn(async move {
            // Host first: a task waiting for its busy host must not hold a global slot that a
            // feed on an idle host could use.
            let _host = host.acquire_owned().await;
            let _permit = permits.acquire_owned().await;
            // Its own task, so a panic anywhere in one feed's poll (a bug, or a dependency
            // tripping over hostile input) is recorded against that feed and backs it off,
            // instead of failing the whole cycle and leaving the feed due forever.
            let inner = {
                let (ctx, feed) = (ctx.clone(), feed.clone());
                tokio::spawn(async move { poll_feed(&ctx, feed, interval).await })
            };
            let report = match inner.await {
                Ok(report) => report,
                Err(err) => {
                    let message = format!("internal error while polling: {err}; please report it");
                    let settled = ctx.policy.schedule.interval(interval, feed.interval);
                    let now = Timestamp::now();
                    failed(&ctx, &feed, settled, now, "internal", message, None)
                        .await
                        .map(|outcome| FeedReport {
                            url: feed.url.clone(),
                            outcome,
                        })
                }
            };
            ctx.completed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (index, report)
        });
    }
    let mut reports = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (index, report) = joined?;
        reports.push((index, report?));
    }
    reports.sort_by_key(|(index, _)| *index);
    Ok(reports.into_iter().map(|(_, report)| report).collect())
}

/// Pairs each stored active feed with the interval of its config entry (matched by the URL the
/// config lists, which survives a permanent redirect).
pub fn with_intervals(rows: Vec<FeedRow>, feeds: &[FeedConfig]) -> Vec<(FeedRow, Duration)> {
    let by_url: std::collections::HashMap<&str, Duration> =
        feeds.iter().map(|f| (f.url.as_str(), f.interval)).collect();
    rows.into_iter()
        .map(|row| {
            let interval = by_url
                .get(row.config_url.as_str())
                .copied()
                .unwrap_or(Duration::from_secs(1800));
            (row, interval)
        })
        .collect()
}

/// The render context for `config` and `story`.
pub fn render_context<'a>(config: &'a Config, story: &'a Story) -> RenderContext<'a> {
    RenderContext {
        story_name: &story.name,
        baselines: &story.profile.baselines,
        timezone: &config.digest.timezone,
        timezone_name: &config.digest.timezone_name,
        empty: config.digest.empty,
    }
}

/// Builds and stores the digest of every match not yet in one, with a pending delivery per
/// channel. Returns `None` when the period was empty and the policy is to skip.
pub async fn build_digest(
    config: &Config,
    story: &Arc<Story>,
    store: &Arc<Mutex<Store>>,
) -> anyhow::Result<Option<DigestRow>> {
    let span = info_span!("digest_build");
    let config = config.clone();
    let story = Arc::clone(story);
    let channels: Vec<String> = config.notify.iter().map(|n| n.name.clone()).collect();
    let digest = with_store(store, move |s| {
        s.create_digest(Timestamp::now(), &channels, |input| {
            digest::render_markdown(&render_context(&config, &story), input)
        })
    })
    .instrument(span)
    .await?;
    if let Some(d) = &digest {
        info!(digest = d.id, matches = d.match_count, "digest stored");
    }
    Ok(digest)
}

/// Makes every pending delivery once; failures stay pending (up to [`MAX_DELIVERY_ATTEMPTS`]).
/// Returns how many deliveries are still pending afterwards.
pub async fn deliver_pending(config: &Config, store: &Arc<Mutex<Store>>) -> anyhow::Result<usize> {
    let pending = with_store(store, |s| s.pending_deliveries()).await?;
    let mut still_pending = 0;
    for delivery in pending {
        let span = info_span!("deliver", digest = delivery.digest.id, channel = %delivery.channel);
        let channel: Option<&NotifyConfig> =
            config.notify.iter().find(|n| n.name == delivery.channel);
        let outcome = match channel {
            Some(n) => digest::deliver(&n.channel, &delivery.digest, &config.digest.timezone)
                .instrument(span.clone())
                .await
                .map_err(|err| err.to_string()),
            None => Err(format!(
                "channel {:?} is no longer in the config",
                delivery.channel
            )),
        };
        let give_up = channel.is_none() || delivery.attempts + 1 >= MAX_DELIVERY_ATTEMPTS;
        match &outcome {
            Ok(()) => span.in_scope(|| info!("delivered")),
            Err(err) => {
                span.in_scope(|| warn!(error = %err, give_up, "delivery failed"));
                if !give_up {
                    still_pending += 1;
                }
            }
        }
        let (id, name) = (delivery.digest.id, delivery.channel.clone());
        with_store(store, move |s| {
            s.record_delivery(id, &name, outcome, give_up, Timestamp::now())
        })
        .await?;
    }
    Ok(still_pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let interval = Duration::from_secs(1800);
        let wait = |failures| next_poll_time(now, interval, failures).as_second() - now.as_second();
        assert_eq!(wait(0), 1800);
        assert_eq!(wait(1), 3600);
        assert_eq!(wait(3), 14_400);
        assert_eq!(wait(30), 12 * 3600);
        // A feed polled daily is never polled more often because of the cap.
        assert_eq!(
            next_poll_time(now, Duration::from_secs(86_400), 5).as_second() - now.as_second(),
            86_400
        );
    }
}
