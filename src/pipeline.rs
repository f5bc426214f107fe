//! One poll of one feed through every stage: fetch → parse → match → store; and the digest step:
//! build → store → deliver. `poll --once`, `digest --now` and the daemon all run these same
//! functions, so what the tests exercise is what the service does.

use std::sync::{Arc, Mutex, RwLock};
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
use crate::store::{
    DigestRow, FeedRow, FeedStatus, FetchedPoll, MarksSignature, NewDigest, Review, Store,
    StoreError,
};
use crate::story::feedback::{self, Adjustment, MarkedText};
use crate::story::neardup::Signature;
use crate::story::seeds::load_seed_files;
use crate::story::{Background, MatchInput, Profile, Tuning, Verdict, load_seeds};

/// The `User-Agent` storywatch sends unless the config overrides it.
pub const USER_AGENT: &str = concat!(
    "storywatch/",
    env!("CARGO_PKG_VERSION"),
    " (+https://crates.io/crates/storywatch)"
);

/// After this many failed attempts a delivery is given up and marked failed.
pub const MAX_DELIVERY_ATTEMPTS: u32 = 8;

/// Longest wait between two attempts of one delivery.
const MAX_DELIVERY_BACKOFF: Duration = Duration::from_secs(3600);

/// When a delivery that has now failed `attempts` times is tried again: `first` after the first
/// failure, doubling per failure, capped at an hour; `None` once [`MAX_DELIVERY_ATTEMPTS`] is
/// reached (the delivery is then marked failed and `digest resend` is the way to retry it).
pub fn delivery_retry_at(now: Timestamp, first: Duration, attempts: u32) -> Option<Timestamp> {
    if attempts >= MAX_DELIVERY_ATTEMPTS {
        return None;
    }
    let factor = 1u32 << attempts.saturating_sub(1).min(16);
    let wait = first
        .saturating_mul(factor)
        .min(MAX_DELIVERY_BACKOFF.max(first));
    let wait = jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::from_hours(1));
    Some(now.checked_add(wait).unwrap_or(now))
}

/// The story as the pipeline uses it: its name, the profile built from the seeds, and what it
/// learned from the stream and from review.
///
/// Clones share the learned state, so a reload of the marks in one is seen by all.
#[derive(Debug, Clone)]
pub struct Story {
    /// Display name, also the key its matches are stored under.
    pub name: String,
    /// The profile built from the seeds alone (what `classify` and `eval` use).
    pub profile: Profile,
    /// The user's tuning, to rebuild the profile against new stream statistics.
    tuning: Tuning,
    /// The profile against the stream's statistics, the adjustment learned from the stored
    /// marks, and the profile with both.
    learned: Arc<RwLock<Learned>>,
}

/// What a story learned from the stream and from review, and from which data.
#[derive(Debug)]
struct Learned {
    /// The marks it was learned from; `None` before the first look at the database.
    signature: Option<MarksSignature>,
    /// How many stream items the base profile's background counts.
    stream_documents: u64,
    /// The seed profile weighed against the shipped background and the stream statistics.
    base: Arc<Profile>,
    /// The adjustment.
    adjustment: Arc<Adjustment>,
    /// The base profile with the adjustment's centroid changes applied.
    profile: Arc<Profile>,
}

/// Fewest new stream items, and share of those already counted, before the profile is weighed
/// again: statistics of a few more items barely move an idf, and rebuilding costs a few
/// milliseconds plus reading every term's count.
const STREAM_REBUILD_MIN: u64 = 50;
const STREAM_REBUILD_SHARE: u64 = 10;

impl Story {
    /// Loads the seeds and builds the profile. Nothing is learned yet: call
    /// [`Story::learn_from`] with the database to apply the stream and the marks.
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
        Ok(Story::with_tuning(
            config.name.clone(),
            profile,
            config.tuning.clone(),
        ))
    }

    /// A story from a built profile without tuning, with nothing learned yet.
    pub fn new(name: String, profile: Profile) -> Story {
        Story::with_tuning(name, profile, Tuning::default())
    }

    /// A story from a profile built with `tuning`, with nothing learned yet.
    fn with_tuning(name: String, profile: Profile, tuning: Tuning) -> Story {
        let base = Arc::new(profile.clone());
        let learned = Learned {
            signature: None,
            stream_documents: 0,
            base: Arc::clone(&base),
            adjustment: Arc::default(),
            profile: base,
        };
        Story {
            name,
            profile,
            tuning,
            learned: Arc::new(RwLock::new(learned)),
        }
    }

    /// Brings the story up to date with `store`: weighs the profile against the stream
    /// statistics when enough new items were counted since the last time, and re-learns from
    /// the story's marks when they changed (one aggregate query each when nothing did).
    /// Returns whether the review adjustment changed.
    pub fn learn_from(&self, store: &Store) -> Result<bool, StoreError> {
        let signature = store.marks_signature(&self.name)?;
        let documents = store.stream_documents()?;
        let (known_signature, counted, base) = {
            let learned = self.read_learned();
            (
                learned.signature,
                learned.stream_documents,
                Arc::clone(&learned.base),
            )
        };
        let reweigh = documents >= counted + STREAM_REBUILD_MIN.max(counted / STREAM_REBUILD_SHARE);
        if !reweigh && known_signature == Some(signature) {
            return Ok(false);
        }
        let (base, counted) = if reweigh {
            match self.weigh_against_stream(store)? {
                Some((profile, documents)) => (Arc::new(profile), documents),
                None => (base, counted),
            }
        } else {
            (base, counted)
        };
        let marked = store.marked_items(&self.name)?;
        let texts: Vec<MarkedText<'_>> = marked
            .iter()
            .map(|m| MarkedText {
                title: &m.item.title,
                summary: &m.item.summary,
                content: &m.item.content,
                relevant: m.review == Review::Relevant,
            })
            .collect();
        let adjustment = feedback::learn(&base, &texts);
        let profile = base.with_feedback(&adjustment);
        let mut learned = self.learned.write().unwrap_or_else(|e| e.into_inner());
        let changed = learned.adjustment.reviews() != 0 || adjustment.reviews() != 0;
        *learned = Learned {
            signature: Some(signature),
            stream_documents: counted,
            base,
            adjustment: Arc::new(adjustment),
            profile: Arc::new(profile),
        };
        Ok(changed)
    }

    /// The seed profile rebuilt against the shipped background merged with the stored stream
    /// statistics, and how many items those count; `None` (the old profile stays) in the
    /// unexpected case that the seeds that built once no longer build.
    fn weigh_against_stream(&self, store: &Store) -> Result<Option<(Profile, u64)>, StoreError> {
        let stats = store.stream_stats()?;
        let background = Background::shipped_with_stream(
            stats.documents,
            stats.terms.iter().map(|(t, n)| (t.as_str(), *n)),
        );
        match Profile::build_with_background(
            self.profile.baselines.clone(),
            &self.tuning,
            Arc::new(background),
        ) {
            Ok(profile) => {
                info!(
                    story = %self.name,
                    stream_items = stats.documents,
                    terms = stats.terms.len(),
                    "profile weighed against the stream statistics"
                );
                Ok(Some((profile, stats.documents)))
            }
            Err(err) => {
                warn!(story = %self.name, error = %err, "cannot reweigh the profile; keeping the previous one");
                Ok(None)
            }
        }
    }

    /// How many stream items (items no story matched) the profile's term weights count, beyond
    /// the shipped background.
    pub fn stream_documents(&self) -> u64 {
        self.read_learned().stream_documents
    }

    /// What review changed (empty until [`Story::learn_from`] found marks).
    pub fn adjustment(&self) -> Arc<Adjustment> {
        Arc::clone(&self.read_learned().adjustment)
    }

    /// The profile as review changed it (the seed profile until marks are learned).
    pub fn learned_profile(&self) -> Arc<Profile> {
        Arc::clone(&self.read_learned().profile)
    }

    fn read_learned(&self) -> std::sync::RwLockReadGuard<'_, Learned> {
        // A panic while swapping leaves either the old or the new state, both usable.
        self.learned.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The verdict for one item first seen at `seen`, with what review taught applied. An item
    /// without a publication date is judged as published when first seen: the matcher tells
    /// follow-ups from re-reports partly by date, and an undated item in a live feed is new.
    pub fn classify(&self, item: &Item, seen: Timestamp) -> Verdict {
        let (profile, adjustment) = {
            let learned = self.read_learned();
            (
                Arc::clone(&learned.profile),
                Arc::clone(&learned.adjustment),
            )
        };
        let input = MatchInput {
            title: &item.title,
            summary: &item.summary,
            content: &item.content,
            published: item.published.or(Some(seen)),
        };
        let verdict = profile.classify(&input);
        adjustment.adjust(&profile, &input, verdict)
    }
}

/// Every story the config follows, in config order; never empty. Each item gets a verdict per
/// story; the digest shows the stories' developments one story after another.
#[derive(Debug, Clone)]
pub struct Stories {
    /// The stories, `[story]` or the `[[stories]]` entries in order.
    list: Vec<Story>,
    /// Every story's baseline articles, for naming what a digest entry follows up on.
    baselines: Vec<crate::story::BaselineArticle>,
    /// The stories' names in order.
    names: Vec<String>,
    /// The names joined for titles (`A · B`).
    title: String,
}

impl Stories {
    /// Loads the seeds of every story in `config` and builds their profiles.
    pub fn load(config: &Config) -> anyhow::Result<Stories> {
        use anyhow::Context as _;
        let mut list = Vec::with_capacity(1 + config.other_stories.len());
        for story in config.stories() {
            list.push(Story::load(story).with_context(|| format!("story {:?}", story.name))?);
        }
        Stories::new(list)
    }

    /// A set of built stories (at least one).
    pub fn new(list: Vec<Story>) -> anyhow::Result<Stories> {
        if list.is_empty() {
            anyhow::bail!("no story to follow; add a [story] section to the config");
        }
        let baselines = list
            .iter()
            .flat_map(|s| s.profile.baselines.iter().cloned())
            .collect();
        let names: Vec<String> = list.iter().map(|s| s.name.clone()).collect();
        let title = names.join(" · ");
        Ok(Stories {
            list,
            baselines,
            names,
            title,
        })
    }

    /// The first story (the only one with `[story]`): the one the review page shows.
    pub fn first(&self) -> &Story {
        // `new` refuses an empty list.
        &self.list[0]
    }

    /// The stories in config order.
    pub fn iter(&self) -> std::slice::Iter<'_, Story> {
        self.list.iter()
    }

    /// The story named `name`.
    pub fn get(&self, name: &str) -> Option<&Story> {
        self.list.iter().find(|s| s.name == name)
    }

    /// The stories' names in config order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The near-duplicate signature of a matched item: its terms, with those of any story's
    /// vocabulary marked (see [`Signature::for_story`]).
    pub fn signature(&self, item: &Item) -> Signature {
        Signature::for_story(&item.title, &item.summary, |t| {
            self.list.iter().any(|s| s.profile.is_story_term(t))
        })
    }

    /// Re-learns every story from its marks (see [`Story::learn_from`]); whether any changed.
    pub fn learn_from(&self, store: &Store) -> Result<bool, StoreError> {
        let mut changed = false;
        for story in &self.list {
            changed |= story.learn_from(store)?;
        }
        Ok(changed)
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
        /// Stable kind (`timeout`, `http_status`, `malformed_xml`, `html_page`, …).
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
    /// The stories items are matched against.
    pub stories: Arc<Stories>,
    /// Feeds finished since start; the daemon's watchdog watches it move.
    pub completed: Arc<std::sync::atomic::AtomicU64>,
    /// Pacing and backlog rules.
    pub policy: PollPolicy,
}

impl PollContext {
    /// Handles for polling feeds for `stories` into `store` with `fetcher`.
    pub fn new(fetcher: Fetcher, store: Arc<Mutex<Store>>, stories: Arc<Stories>) -> PollContext {
        PollContext {
            fetcher,
            store,
            stories,
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
            Ok(FetchOutcome::NotModified {
                cache,
                moved_permanently_to,
            }) => {
                let next = schedule.next_after_success(
                    now,
                    &feed.url,
                    interval,
                    settled,
                    cache.min_wait(),
                );
                with_store(&ctx.store, move |s| {
                    s.record_not_modified(feed.id, now, next)?;
                    if let Some(new_url) = moved_permanently_to {
                        s.record_moved(feed.id, &new_url)?;
                    }
                    Ok(())
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
                    // Marks made since the last poll (on the page or the CLI) count now.
                    let stories = Arc::clone(&ctx.stories);
                    if with_store(&ctx.store, move |s| stories.learn_from(s)).await? {
                        info!("profile re-learned from review marks");
                    }
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
                            let verdict = ctx.stories.first().classify(&item, now);
                            (item, verdict)
                        })
                        .collect();
                    // A verdict per further story, in item order.
                    let more_verdicts: Vec<(String, Vec<Verdict>)> = ctx
                        .stories
                        .iter()
                        .skip(1)
                        .map(|story| {
                            let verdicts = classified
                                .iter()
                                .map(|(item, _)| story.classify(item, now))
                                .collect();
                            (story.name.clone(), verdicts)
                        })
                        .collect();
                    let story = ctx.stories.first().name.clone();
                    let stories = Arc::clone(&ctx.stories);
                    let counts = with_store(&ctx.store, move |s| {
                        let counts = s.record_fetched(&FetchedPoll {
                            feed_id: feed.id,
                            story: &story,
                            feed_title: parsed.title.as_deref(),
                            validators: &validators,
                            items: &classified,
                            more_verdicts: &more_verdicts,
                            now,
                            next_poll_at: next,
                            background_before,
                            interval: Some(adapted),
                            sign: &|item| stories.signature(item),
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
                    failed(ctx, &feed, settled, now, err.kind(), err.to_string(), None).await?
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
        let metrics = crate::metrics::global();
        match &outcome {
            FeedOutcome::Fetched {
                new_items,
                new_matches,
                ..
            } => metrics.poll("fetched", None, *new_items, *new_matches),
            FeedOutcome::NotModified => metrics.poll("not_modified", None, 0, 0),
            FeedOutcome::Failed { kind, .. } => metrics.poll("failed", Some(kind), 0, 0),
        }
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
                AbortOnDrop(tokio::spawn(async move {
                    poll_feed(&ctx, feed, interval).await
                }))
            };
            let report = match inner.wait().await {
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

/// A spawned poll that is cancelled when its handle is dropped. A plain `JoinHandle` detaches
/// on drop, so abandoning a cycle on shutdown would leave its fetches running on; with this,
/// dropping the cycle's future cancels every in-flight poll at its next await (a store write
/// already under way finishes first: it runs whole on a blocking thread, in one transaction).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn wait(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why `poll --once`, which otherwise polls every feed now whatever its schedule, leaves this
/// feed alone: the publisher removed it (410 Gone disabled it) or asked, with 429 or
/// `Retry-After`, for a wait that has not passed yet. `None` means poll it.
pub fn once_skip_reason(feed: &FeedStatus, now: Timestamp) -> Option<String> {
    if let Some(reason) = &feed.disabled_reason {
        return Some(format!("disabled: {reason}"));
    }
    let held_until = feed.next_poll_at.filter(|at| *at > now)?;
    (feed.last_error_kind.as_deref() == Some(crate::feeds::fetch::RATE_LIMITED)).then(|| {
        format!(
            "{}: the server asked not to be polled before {}",
            crate::feeds::fetch::RATE_LIMITED,
            held_until.strftime("%Y-%m-%d %H:%M:%S UTC")
        )
    })
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

/// The render context for `config` and `stories`.
pub fn render_context<'a>(config: &'a Config, stories: &'a Stories) -> RenderContext<'a> {
    RenderContext {
        story_name: &stories.title,
        stories: &stories.names,
        baselines: &stories.baselines,
        timezone: &config.digest.timezone,
        timezone_name: &config.digest.timezone_name,
        empty: config.digest.empty,
        related: config.digest.related,
    }
}

/// Builds and stores the digest of every match not yet in one, with a pending delivery per
/// channel. Returns `None` when the period was empty and the policy is to skip; an error, with
/// nothing used up, when no channel is configured.
pub async fn build_digest(
    config: &Config,
    stories: &Arc<Stories>,
    store: &Arc<Mutex<Store>>,
) -> anyhow::Result<Option<DigestRow>> {
    if config.notify.is_empty() {
        // Building would use up the matches with nobody to read them: keep them for later.
        anyhow::bail!(
            "{}: no [[notify]] channel, so the digest would reach nobody; the matches are kept \
             until one is added, e.g. [[notify]] kind = \"file\" path = \"digests\"",
            config.origin
        );
    }
    let span = info_span!("digest_build");
    let config = config.clone();
    let stories = Arc::clone(stories);
    let channels: Vec<String> = config.notify.iter().map(|n| n.name.clone()).collect();
    let digest = with_store(store, move |s| {
        s.create_digest(Timestamp::now(), &channels, |input| {
            let model = digest::Digest::build(&render_context(&config, &stories), input)?;
            // A model that cannot be serialised still leaves the Markdown to deliver.
            Some(NewDigest {
                markdown: digest::to_markdown(&model),
                model: serde_json::to_string(&model).unwrap_or_default(),
            })
        })
    })
    .instrument(span)
    .await?;
    if let Some(d) = &digest {
        info!(digest = d.id, matches = d.match_count, "digest stored");
    }
    Ok(digest)
}

/// Makes every pending delivery that is due once. A failure stays pending and is retried with
/// backoff ([`delivery_retry_at`]) until [`MAX_DELIVERY_ATTEMPTS`]. Returns how many deliveries
/// are still pending afterwards.
pub async fn deliver_pending(config: &Config, store: &Arc<Mutex<Store>>) -> anyhow::Result<usize> {
    deliver_due(config, store, None).await
}

/// Makes the one delivery of digest `digest_id` to `channel` if it is pending and due
/// (`digest resend`): other pending deliveries are left to the daemon. Returns 1 if it is
/// still pending afterwards, else 0.
pub async fn deliver_one(
    config: &Config,
    store: &Arc<Mutex<Store>>,
    digest_id: i64,
    channel: &str,
) -> anyhow::Result<usize> {
    deliver_due(config, store, Some((digest_id, channel.to_string()))).await
}

async fn deliver_due(
    config: &Config,
    store: &Arc<Mutex<Store>>,
    only: Option<(i64, String)>,
) -> anyhow::Result<usize> {
    // Claimed for longer than any one delivery may take (each is bounded by its timeout).
    let lease = config
        .notify
        .iter()
        .map(|n| match &n.channel {
            crate::config::Channel::Smtp(c) => c.timeout.saturating_mul(3),
            crate::config::Channel::Webhook(c) => c.timeout.saturating_mul(2),
            _ => Duration::from_secs(60),
        })
        .sum::<Duration>()
        + Duration::from_secs(60);
    let pending = with_store(store, move |s| {
        let only = only.as_ref().map(|(id, channel)| (*id, channel.as_str()));
        s.claim_due_deliveries(Timestamp::now(), lease, only)
    })
    .await?;
    let mut still_pending = 0;
    // A channel that just failed is not tried again for its other digests in this pass: they
    // would most likely fail the same way, and a hanging receiver would hold the loop for one
    // timeout per digest. Their claims are released and the next pass tries them.
    let mut failed_channels: Vec<String> = Vec::new();
    for delivery in pending {
        if failed_channels.contains(&delivery.channel) {
            still_pending += 1;
            let (id, name) = (delivery.digest.id, delivery.channel.clone());
            with_store(store, move |s| s.release_claim(id, &name)).await?;
            continue;
        }
        let attempt = delivery.attempts + 1;
        let span = info_span!(
            "deliver",
            digest = delivery.digest.id,
            channel = %delivery.channel,
            attempt
        );
        let channel: Option<&NotifyConfig> =
            config.notify.iter().find(|n| n.name == delivery.channel);
        let outcome = match channel {
            Some(n) => digest::deliver(
                n,
                &delivery.digest,
                delivery.generation,
                &config.digest.timezone,
            )
            .instrument(span.clone())
            .await
            .map_err(|err| err.to_string()),
            None => Err(format!(
                "channel {:?} is no longer in the config; add it back and run `storywatch digest resend {} --channel {}`",
                delivery.channel, delivery.digest.id, delivery.channel
            )),
        };
        let now = Timestamp::now();
        let retry_at = match channel {
            Some(_) => delivery_retry_at(now, config.digest.retry, attempt),
            None => None,
        };
        let attempt_outcome = if outcome.is_ok() {
            "delivered"
        } else {
            "failed"
        };
        crate::metrics::global().delivery(&delivery.channel, attempt_outcome);
        match &outcome {
            Ok(()) => span.in_scope(|| info!("delivered")),
            Err(err) => {
                let give_up = retry_at.is_none();
                span.in_scope(
                    || warn!(error = %err, give_up, next_attempt = ?retry_at, "delivery failed"),
                );
                if !give_up {
                    still_pending += 1;
                }
                failed_channels.push(delivery.channel.clone());
            }
        }
        let (id, name) = (delivery.digest.id, delivery.channel.clone());
        with_store(store, move |s| {
            s.record_delivery(id, &name, outcome, retry_at, now)
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

    #[tokio::test]
    async fn dropping_a_poll_handle_cancels_its_task() {
        // The task owns the sender; its future is dropped (and the sender with it) only when
        // the task is cancelled, since it never finishes by itself.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let poll = AbortOnDrop(tokio::spawn(async move {
            let _held = tx;
            std::future::pending::<()>().await
        }));
        drop(poll);
        // The bound only turns a regression's hang into a failure; cancelling takes microseconds.
        let closed = tokio::time::timeout(Duration::from_secs(60), rx).await;
        assert!(
            matches!(closed, Ok(Err(_))),
            "the task still runs after its handle went"
        );
    }

    #[tokio::test]
    async fn a_failing_channel_is_tried_once_per_pass() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
        let text = format!(
            "[storage]\ndatabase = {:?}\n[story]\nname = \"s\"\nseeds = \"../seeds\"\n\
             [[notify]]\nkind = \"webhook\"\nname = \"hook\"\nurl = \"http://127.0.0.1:9/x\"\n",
            dir.path().join("t.db").display().to_string()
        );
        let config = Config::parse(&text, crate::config::ConfigOrigin::Bundled, &base).unwrap();
        let mut store = Store::open(&config.storage.database).unwrap();
        let channels = vec!["hook".to_string()];
        for _ in 0..2 {
            store
                .create_digest(Timestamp::now(), &channels, |_| {
                    Some(NewDigest {
                        markdown: "x".into(),
                        model: String::new(),
                    })
                })
                .unwrap();
        }
        let store = Arc::new(Mutex::new(store));
        let pending = deliver_pending(&config, &store).await.unwrap();
        assert_eq!(pending, 2);
        let guard = store.lock().unwrap();
        let attempts: Vec<u32> = [1, 2]
            .iter()
            .map(|id| guard.deliveries(*id).unwrap()[0].attempts)
            .collect();
        assert_eq!(attempts, vec![1, 0], "the second digest was not tried");
        // Its claim was released: only the backoff holds the first one back.
        assert_eq!(guard.pending_deliveries(Timestamp::now()).unwrap().len(), 1);
    }

    fn bundled_story(name: &str) -> Story {
        let seeds = load_seed_files(bundled::SEED_FILES).unwrap();
        Story::new(
            name.to_string(),
            Profile::build(seeds, &crate::story::Tuning::default()).unwrap(),
        )
    }

    fn news(key: &str, title: &str, summary: &str) -> Item {
        Item {
            dedup_key: key.into(),
            title: title.into(),
            summary: summary.into(),
            content: String::new(),
            link: None,
            published: Some("2025-03-01T12:00:00Z".parse().unwrap()),
            source: None,
        }
    }

    #[test]
    fn the_profile_is_reweighed_once_enough_stream_items_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        store
            .sync_feeds(&[FeedConfig {
                url: "https://a.example/f".into(),
                interval: Duration::from_secs(1800),
                title: None,
            }])
            .unwrap();
        let feed_id = store.active_feeds().unwrap()[0].id;
        let story = bundled_story("s");
        let record = |store: &mut Store, from: usize, to: usize| {
            let now = Timestamp::now();
            // Off-topic news that keeps saying "officials", a word of the story's centroid.
            let items: Vec<(Item, Verdict)> = (from..to)
                .map(|n| {
                    let i = news(
                        &n.to_string(),
                        &format!("City officials approve budget number {n}"),
                        "Officials said the council would meet again next month.",
                    );
                    let v = story.classify(&i, now);
                    (i, v)
                })
                .collect();
            assert!(
                items
                    .iter()
                    .all(|(_, v)| v.verdict == crate::story::VerdictKind::OffTopic)
            );
            store
                .record_fetched(&FetchedPoll {
                    feed_id,
                    story: "s",
                    feed_title: None,
                    validators: &Default::default(),
                    items: &items,
                    more_verdicts: &[],
                    now,
                    next_poll_at: now,
                    background_before: None,
                    interval: None,
                    sign: &crate::store::unsigned,
                })
                .unwrap();
        };
        let seeds_only = story.profile.term_weight("officials");
        assert!(seeds_only > 0.0);
        record(&mut store, 0, STREAM_REBUILD_MIN as usize - 1);
        story.learn_from(&store).unwrap();
        assert_eq!(story.stream_documents(), 0, "too few items to reweigh");
        record(&mut store, 100, 200);
        story.learn_from(&store).unwrap();
        assert_eq!(story.stream_documents(), STREAM_REBUILD_MIN - 1 + 100);
        let reweighed = story.learned_profile().term_weight("officials");
        assert!(reweighed < seeds_only * 0.9, "{reweighed} vs {seeds_only}");
        // What `classify` and `eval` use stays the seeds' alone.
        assert_eq!(story.profile.term_weight("officials"), seeds_only);
        // The facets are untouched by the stream.
        let facets = |p: &Profile| -> Vec<std::collections::BTreeMap<String, f64>> {
            p.facets
                .iter()
                .map(|f| f.terms.iter().map(|(t, w)| (t.clone(), *w)).collect())
                .collect()
        };
        assert_eq!(facets(&story.learned_profile()), facets(&story.profile));
    }

    #[test]
    fn marks_in_the_store_teach_the_story_and_undo_unteaches() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        store
            .sync_feeds(&[FeedConfig {
                url: "https://a.example/f".into(),
                interval: Duration::from_secs(1800),
                title: None,
            }])
            .unwrap();
        let feed_id = store.active_feeds().unwrap()[0].id;
        let story = bundled_story("s");
        let now = Timestamp::now();
        let items: Vec<(Item, Verdict)> = [
            news(
                "1",
                "Chinese police bust fentanyl lab in Hebei, Xinhua says",
                "Police in Hebei province raided a fentanyl lab and detained 12 suspects.",
            ),
            news(
                "2",
                "Xinhua: police in China's Hebei break up fentanyl lab",
                "Police in Hebei, China, broke up a fentanyl lab and detained suspects.",
            ),
        ]
        .into_iter()
        .map(|i| {
            let v = story.classify(&i, now);
            (i, v)
        })
        .collect();
        assert!(items.iter().all(|(_, v)| v.verdict.is_detection()));
        store
            .record_fetched(&FetchedPoll {
                feed_id,
                story: "s",
                feed_title: None,
                validators: &Default::default(),
                items: &items,
                more_verdicts: &[],
                now,
                next_poll_at: now,
                background_before: None,
                interval: None,
                sign: &crate::store::unsigned,
            })
            .unwrap();
        assert!(
            !story.learn_from(&store).unwrap(),
            "no marks, nothing learned"
        );
        store.mark(1, Review::Irrelevant, now).unwrap();
        assert!(story.learn_from(&store).unwrap());
        assert!(
            !story.learn_from(&store).unwrap(),
            "same marks: no re-learning"
        );
        assert_eq!(story.adjustment().irrelevant, 1);
        // The unmarked rewrite of the rejected item is demoted too.
        let after = story.classify(&items[1].0, now);
        assert!(!after.verdict.is_detection(), "{after:?}");
        assert!(after.score < items[1].1.score);
        // Undo: the story forgets.
        store.mark(1, Review::Unreviewed, now).unwrap();
        assert!(story.learn_from(&store).unwrap());
        assert!(story.adjustment().is_empty());
        assert_eq!(story.classify(&items[1].0, now), items[1].1);
    }

    #[test]
    fn delivery_retries_back_off_then_give_up() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let first = Duration::from_secs(60);
        let wait = |attempts| {
            delivery_retry_at(now, first, attempts).map(|t| t.as_second() - now.as_second())
        };
        assert_eq!(wait(1), Some(60));
        assert_eq!(wait(2), Some(120));
        assert_eq!(wait(4), Some(480));
        assert_eq!(wait(7), Some(3600));
        assert_eq!(wait(MAX_DELIVERY_ATTEMPTS), None);
    }
}
