//! The SQLite store: the only module that opens the database.
//!
//! Every write that belongs together happens in one `IMMEDIATE` transaction, so a crash at any
//! moment leaves either all of it or none of it: a poll's items and their matches arrive
//! together, and a digest is stored together with the matches it covers and its pending
//! deliveries before anything is sent.

mod groups;
mod marks;
mod migrations;
mod review;
mod stream;

pub use groups::GroupMember;
pub use marks::MarksSignature;
pub use stream::StreamStats;

pub use review::{
    MarkedItem, MatchOrigin, PollLag, REVIEWER_ADDED_WHY, RescoreChange, RescoreReport, SearchHit,
    fts_query,
};

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use crate::config::FeedConfig;
use crate::feeds::Validators;
use crate::item::Item;
use crate::story::neardup::Signature;
use crate::story::{Verdict, VerdictKind};

/// A database problem.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or created.
    #[error(
        "cannot open database {path}: {cause}; check [storage] database and that its folder is writable"
    )]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said (in the message, so not also a `source` printed twice).
        cause: rusqlite::Error,
    },
    /// The file holds a schema newer than this program knows.
    #[error(
        "database {path} has schema version {found}, newer than this storywatch ({known}); upgrade storywatch"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest version this program knows.
        known: i64,
    },
    /// A read-only look found no database file.
    #[error(
        "no database at {path} yet: the first `storywatch run` or `storywatch poll --once` creates it"
    )]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A read-only look found a schema older than this program's, which only a writer upgrades.
    #[error(
        "database {path} has schema version {found}, older than this storywatch ({known}); \
         start the daemon (or run `storywatch poll --once`) once to upgrade it"
    )]
    TooOld {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest version this program knows.
        known: i64,
    },
    /// Any other SQLite error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value this version cannot read.
    #[error("database holds an unexpected value: {0}")]
    Corrupt(String),
}

type Result<T> = std::result::Result<T, StoreError>;

/// How a person judged a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Review {
    /// Not looked at yet.
    Unreviewed,
    /// Confirmed as part of the story.
    Relevant,
    /// A false match.
    Irrelevant,
}

impl Review {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Review::Unreviewed => "unreviewed",
            Review::Relevant => "relevant",
            Review::Irrelevant => "irrelevant",
        }
    }

    fn parse(text: &str) -> Result<Review> {
        match text {
            "unreviewed" => Ok(Review::Unreviewed),
            "relevant" => Ok(Review::Relevant),
            "irrelevant" => Ok(Review::Irrelevant),
            other => Err(StoreError::Corrupt(format!("review state {other:?}"))),
        }
    }
}

fn verdict_name(kind: VerdictKind) -> &'static str {
    match kind {
        VerdictKind::FollowUp => "follow_up",
        VerdictKind::ReReport => "re_report",
        VerdictKind::Related => "related",
        VerdictKind::OffTopic => "off_topic",
    }
}

fn parse_verdict(text: &str) -> Result<VerdictKind> {
    match text {
        "follow_up" => Ok(VerdictKind::FollowUp),
        "re_report" => Ok(VerdictKind::ReReport),
        "related" => Ok(VerdictKind::Related),
        "off_topic" => Ok(VerdictKind::OffTopic),
        other => Err(StoreError::Corrupt(format!("verdict {other:?}"))),
    }
}

fn to_secs(time: Timestamp) -> i64 {
    time.as_second()
}

fn from_secs(secs: Option<i64>) -> Option<Timestamp> {
    secs.and_then(|s| Timestamp::from_second(s).ok())
}

/// A feed the scheduler knows, with what the next poll needs.
#[derive(Debug, Clone)]
pub struct FeedRow {
    /// Row id.
    pub id: i64,
    /// Current URL: where the feed is polled; a permanent redirect changes it.
    pub url: String,
    /// The URL as the config's `[[feeds]]` entry lists it; the feed's identity.
    pub config_url: String,
    /// No successful poll yet: the next one is the first (its backlog is background).
    pub first_poll: bool,
    /// The interval the schedule last settled on (adaptive), if any.
    pub interval: Option<std::time::Duration>,
    /// The feed's own title, once seen.
    pub title: Option<String>,
    /// Cache validators from the last 200.
    pub validators: Validators,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// When it is next due.
    pub next_poll_at: Timestamp,
}

/// A feed's health as `feeds list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FeedStatus {
    /// URL polled (differs from `config_url` after a permanent redirect).
    pub url: String,
    /// URL as the config lists it.
    pub config_url: String,
    /// Why the feed is no longer polled (e.g. 410 Gone), until re-enabled.
    pub disabled_reason: Option<String>,
    /// The interval the schedule settled on, in seconds.
    pub interval_secs: Option<u64>,
    /// The feed's own title, once seen.
    pub title: Option<String>,
    /// Last successful fetch (200 or 304).
    pub last_success_at: Option<Timestamp>,
    /// Last attempt of any outcome.
    pub last_attempt_at: Option<Timestamp>,
    /// The last error's text, cleared by a success.
    pub last_error: Option<String>,
    /// The last error's kind (`timeout`, `http_status`, `malformed_xml`, `html_page`, …).
    pub last_error_kind: Option<String>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// When it is next due.
    pub next_poll_at: Option<Timestamp>,
    /// How many items are stored for it.
    pub items: u64,
}

/// The outcome of storing one successful poll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollCounts {
    /// Items not seen before.
    pub new_items: usize,
    /// Of those, how many matched the story.
    pub new_matches: usize,
    /// Of the new items, how many were stored as backlog (background, never matched).
    pub background: usize,
}

/// The plain signature (no story vocabulary) tests store items with.
#[cfg(test)]
pub(crate) fn unsigned(item: &Item) -> Signature {
    Signature::of(&item.title, &item.summary)
}

/// A successful poll, as [`Store::record_fetched`] stores it.
#[derive(Clone, Copy)]
pub struct FetchedPoll<'a> {
    /// The feed polled.
    pub feed_id: i64,
    /// The story the verdicts are for.
    pub story: &'a str,
    /// The feed's own title.
    pub feed_title: Option<&'a str>,
    /// The validators to send next time.
    pub validators: &'a Validators,
    /// Every entry in the feed with its verdict for `story`.
    pub items: &'a [(Item, Verdict)],
    /// Each further story's name and its verdicts, in the order of `items` (empty with one
    /// story).
    pub more_verdicts: &'a [(String, Vec<Verdict>)],
    /// When the poll happened.
    pub now: Timestamp,
    /// When the feed is next due.
    pub next_poll_at: Timestamp,
    /// New items published before this are backlog: stored as background, not matched.
    pub background_before: Option<Timestamp>,
    /// The interval the schedule settled on, remembered for polls that end in a 304.
    pub interval: Option<std::time::Duration>,
    /// The near-duplicate signature of a newly matched item (see [`Signature::for_story`]).
    pub sign: &'a dyn Fn(&Item) -> Signature,
}

/// A stored match with its item, as lists and digests show it.
#[derive(Debug, Clone, Serialize)]
pub struct MatchRow {
    /// The item's id (the handle users type in `items show ID`).
    pub id: i64,
    /// The story it matched.
    pub story: String,
    /// Headline.
    pub title: String,
    /// Plain-text summary.
    pub summary: String,
    /// Link, http(s) only.
    pub link: Option<String>,
    /// Outlet.
    pub source: Option<String>,
    /// The feed's URL.
    pub feed_url: String,
    /// Published time, else first seen.
    pub published_at: Option<Timestamp>,
    /// When storywatch first stored it.
    pub first_seen_at: Timestamp,
    /// The matcher's verdict.
    pub verdict: VerdictKind,
    /// The matcher's score.
    pub score: f64,
    /// Nearest baseline article.
    pub baseline: Option<String>,
    /// The matcher's reasons.
    pub why: Vec<String>,
    /// Review state.
    pub review: Review,
    /// The digest that carried it, if any.
    pub digest_id: Option<i64>,
    /// Its near-duplicate group: the id of the group's earliest item (see
    /// [`Store::group_of`]); `None` for items stored before groups were kept.
    pub group_id: Option<i64>,
    /// Outlets of the other items in its group, earliest first, without its own outlet.
    pub also_reported_by: Vec<String>,
    /// Whether another report of its group was in an earlier digest for the same story: a copy
    /// of a development already sent, which the digest does not send again.
    pub group_sent: bool,
}

/// Filters for [`Store::list_matches`].
#[derive(Debug, Clone, Default)]
pub struct MatchFilter {
    /// Only this review state.
    pub review: Option<Review>,
    /// Only this verdict.
    pub verdict: Option<VerdictKind>,
    /// Only this story.
    pub story: Option<String>,
    /// Only items published (else first seen) at or after this time.
    pub since: Option<Timestamp>,
    /// Only items published (else first seen) before this time.
    pub until: Option<Timestamp>,
    /// At most this many, newest first.
    pub limit: Option<usize>,
    /// Skip this many first (paging, with `limit`).
    pub offset: Option<usize>,
}

/// A digest as stored.
#[derive(Debug, Clone, Serialize)]
pub struct DigestRow {
    /// Row id.
    pub id: i64,
    /// When it was built.
    pub created_at: Timestamp,
    /// The end of the previous digest's period (None for the first).
    pub period_start: Option<Timestamp>,
    /// When its period ended (= created_at).
    pub period_end: Timestamp,
    /// Matches it covers.
    pub match_count: usize,
    /// The rendered Markdown, delivered as is.
    pub markdown: String,
    /// The structured digest as JSON (`digest::Digest`), for the other renderings; `None` for
    /// digests stored before it was kept.
    pub model: Option<String>,
}

/// A digest to store: its Markdown and its structured model as JSON.
#[derive(Debug, Clone)]
pub struct NewDigest {
    /// The Markdown every text channel delivers.
    pub markdown: String,
    /// The structured digest as JSON.
    pub model: String,
}

/// One channel's delivery state of one digest.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    /// The digest.
    pub digest_id: i64,
    /// The channel's configured name.
    pub channel: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<Timestamp>,
    /// When a pending delivery is tried next.
    pub next_attempt_at: Option<Timestamp>,
}

/// What the digest renderer gets from the store.
#[derive(Debug, Clone)]
pub struct DigestInput {
    /// The matches not yet in any digest, newest first.
    pub matches: Vec<MatchRow>,
    /// Start of the period (end of the previous digest).
    pub period_start: Option<Timestamp>,
    /// End of the period.
    pub period_end: Timestamp,
    /// Items first seen in the period, matched or not.
    pub items_scanned: u64,
    /// Active feeds.
    pub feeds_polled: u64,
    /// Feeds that failed or were disabled since the previous digest, or are failing or
    /// disabled now, for the footer's feed-health line.
    pub failing_feeds: Vec<FeedTrouble>,
}

/// A feed with trouble in a digest's period (see [`DigestInput::failing_feeds`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedTrouble {
    /// Its title, else URL.
    pub feed: String,
    /// The last poll's error while it is failing (cleared by a successful poll).
    pub error: Option<String>,
    /// Why it is disabled, if it is.
    pub disabled: Option<String>,
    /// Whether its last poll failed.
    pub failing_now: bool,
    /// When a poll of it last failed.
    pub last_failed_at: Option<Timestamp>,
}

/// A delivery still to be made.
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    /// The digest.
    pub digest: DigestRow,
    /// The channel's configured name.
    pub channel: String,
    /// Attempts so far.
    pub attempts: u32,
    /// How many times `digest resend` queued it again: each resend is a new message, with its
    /// own idempotency key and Message-ID.
    pub generation: u32,
}

/// How often a delivery another process has claimed is looked at again
/// ([`Store::next_delivery_due`]).
pub const CLAIM_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// The database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let open_error = |cause| StoreError::Open {
            path: path.to_path_buf(),
            cause,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| {
                open_error(rusqlite::Error::ToSqlConversionFailure(Box::new(err)))
            })?;
        }
        let mut conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
        migrate(&mut conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Opens the existing database at `path` for reading only: never creates it, never
    /// migrates it, so a look (`storywatch status`) cannot change what the daemon owns.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        use rusqlite::OpenFlags;
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        let open_error = |cause| StoreError::Open {
            path: path.to_path_buf(),
            cause,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        // With no writer about (no `-wal` file) even a read-only connection would create the
        // `-wal` and `-shm` files, owned by whoever looked: `sudo storywatch status` would then
        // lock the service's own user out of its database. Read as immutable instead, which
        // creates nothing; everything is in the main file then.
        let uri = std::path::absolute(path)
            .ok()
            .and_then(|absolute| url::Url::from_file_path(absolute).ok());
        let conn = match uri {
            Some(mut uri) if !Path::new(&wal).exists() => {
                uri.set_query(Some("mode=ro&immutable=1"));
                Connection::open_with_flags(uri.as_str(), flags | OpenFlags::SQLITE_OPEN_URI)
            }
            _ => Connection::open_with_flags(path, flags),
        }
        .map_err(open_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_error)?;
        let known = migrations::MIGRATIONS.len() as i64;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(open_error)?;
        let path = path.to_path_buf();
        match found.cmp(&known) {
            std::cmp::Ordering::Greater => Err(StoreError::TooNew { path, found, known }),
            std::cmp::Ordering::Less => Err(StoreError::TooOld { path, found, known }),
            std::cmp::Ordering::Equal => Ok(Store { conn, path }),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the feed table follow the config, which is the source of truth: adds new feeds (due
    /// now), reactivates listed ones and deactivates feeds no longer listed (their items stay).
    ///
    /// A feed is identified by its config URL, so a feed that moved (301/308) keeps its row,
    /// items and state while the config still lists the old URL. When the config instead lists
    /// the URL a no-longer-listed feed moved to (the user followed the move), that row is adopted
    /// rather than starting over. A disabled feed is re-enabled when its config entry changes
    /// (interval or title) or when it comes back after being removed.
    pub fn sync_feeds(&mut self, feeds: &[FeedConfig]) -> Result<()> {
        let listed: std::collections::HashSet<&str> =
            feeds.iter().map(|f| f.url.as_str()).collect();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut known = tx.prepare_cached("SELECT 1 FROM feeds WHERE config_url = ?1")?;
            let mut holder =
                tx.prepare_cached("SELECT id, config_url FROM feeds WHERE url = ?1")?;
            let mut adopt = tx.prepare_cached("UPDATE feeds SET config_url = ?2 WHERE id = ?1")?;
            let mut release =
                tx.prepare_cached("UPDATE OR IGNORE feeds SET url = config_url WHERE id = ?1")?;
            let mut upsert = tx.prepare_cached(
                "INSERT INTO feeds (url, config_url, config_fingerprint, active)
                 VALUES (?1, ?1, ?2, 1)
                 ON CONFLICT(config_url) DO UPDATE SET
                    disabled_reason = CASE WHEN feeds.active = 0
                        OR feeds.config_fingerprint IS NOT excluded.config_fingerprint
                        THEN NULL ELSE feeds.disabled_reason END,
                    next_poll_at = CASE WHEN feeds.disabled_reason IS NOT NULL AND (feeds.active = 0
                        OR feeds.config_fingerprint IS NOT excluded.config_fingerprint)
                        THEN 0 ELSE feeds.next_poll_at END,
                    config_fingerprint = excluded.config_fingerprint,
                    active = 1",
            )?;
            for feed in feeds {
                let fingerprint = format!(
                    "{}|{}",
                    feed.interval.as_secs(),
                    feed.title.as_deref().unwrap_or("")
                );
                if known
                    .query_row(params![feed.url], |_| Ok(()))
                    .optional()?
                    .is_none()
                    && let Some((id, their_config)) = holder
                        .query_row(params![feed.url], |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
                        })
                        .optional()?
                {
                    // Another row is already polling this URL because it moved here.
                    if their_config.as_deref().is_some_and(|c| listed.contains(c)) {
                        release.execute(params![id])?;
                    } else {
                        adopt.execute(params![id, feed.url])?;
                    }
                }
                upsert.execute(params![feed.url, fingerprint])?;
            }
        }
        let rows: Vec<(i64, Option<String>)> = tx
            .prepare("SELECT id, config_url FROM feeds WHERE active = 1")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, config_url) in rows {
            if !config_url.as_deref().is_some_and(|c| listed.contains(c)) {
                tx.execute("UPDATE feeds SET active = 0 WHERE id = ?1", params![id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The feeds the scheduler polls: listed in the config and not disabled, in URL order.
    pub fn active_feeds(&self) -> Result<Vec<FeedRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, url, title, etag, last_modified, consecutive_failures, next_poll_at,
                    COALESCE(config_url, url), last_success_at IS NULL, interval_secs
             FROM feeds WHERE active = 1 AND disabled_reason IS NULL ORDER BY url",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(FeedRow {
                id: row.get(0)?,
                url: row.get(1)?,
                title: row.get(2)?,
                validators: Validators {
                    etag: row.get(3)?,
                    last_modified: row.get(4)?,
                },
                consecutive_failures: row.get(5)?,
                next_poll_at: from_secs(row.get(6)?).unwrap_or(Timestamp::UNIX_EPOCH),
                config_url: row.get(7)?,
                first_poll: row.get(8)?,
                interval: row
                    .get::<_, Option<i64>>(9)?
                    .and_then(|s| u64::try_from(s).ok())
                    .map(std::time::Duration::from_secs),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stops polling a feed (410 Gone) and records why; `feeds list` shows the reason until
    /// [`Store::enable_feed`] or a changed config entry lifts it.
    pub fn disable_feed(&mut self, feed_id: i64, reason: &str, now: Timestamp) -> Result<()> {
        self.conn.execute(
            "UPDATE feeds SET disabled_reason = ?2, disabled_at = ?3 WHERE id = ?1",
            params![feed_id, reason, to_secs(now)],
        )?;
        Ok(())
    }

    /// Re-enables the feed whose config or current URL is `url`, due at once with its failure
    /// count cleared. False when no listed feed has that URL.
    pub fn enable_feed(&mut self, url: &str) -> Result<bool> {
        let changed = self.conn.execute(
            "UPDATE feeds SET disabled_reason = NULL, disabled_at = NULL, next_poll_at = 0,
                    consecutive_failures = 0
             WHERE active = 1 AND (config_url = ?1 OR url = ?1)",
            params![url],
        )?;
        Ok(changed > 0)
    }

    /// Health of every active feed.
    pub fn feed_statuses(&self) -> Result<Vec<FeedStatus>> {
        let mut stmt = self.conn.prepare(
            "SELECT url, title, last_success_at, last_attempt_at, last_error, last_error_kind,
                    consecutive_failures, next_poll_at,
                    (SELECT COUNT(*) FROM items WHERE items.feed_id = feeds.id),
                    COALESCE(config_url, url), disabled_reason, interval_secs
             FROM feeds WHERE active = 1 ORDER BY COALESCE(config_url, url)",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(FeedStatus {
                url: row.get(0)?,
                title: row.get(1)?,
                last_success_at: from_secs(row.get(2)?),
                last_attempt_at: from_secs(row.get(3)?),
                last_error: row.get(4)?,
                last_error_kind: row.get(5)?,
                consecutive_failures: row.get(6)?,
                next_poll_at: from_secs(row.get(7)?),
                items: row.get::<_, i64>(8)? as u64,
                config_url: row.get(9)?,
                disabled_reason: row.get(10)?,
                interval_secs: row
                    .get::<_, Option<i64>>(11)?
                    .and_then(|s| u64::try_from(s).ok()),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stores a successful poll in one transaction: new items, their matches for `story`, the
    /// feed's title and validators, and its next due time. Items already stored for this feed
    /// (same dedup key) are left as they are.
    pub fn record_fetched(&mut self, poll: &FetchedPoll<'_>) -> Result<PollCounts> {
        let FetchedPoll {
            feed_id,
            story,
            feed_title,
            validators,
            items,
            more_verdicts,
            now,
            next_poll_at,
            background_before,
            interval,
            sign,
        } = *poll;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut counts = PollCounts::default();
        let mut stream = stream::StreamCounts::default();
        {
            let mut insert_item = tx.prepare_cached(
                "INSERT INTO items (feed_id, dedup_key, title, summary, content, link, source,
                                    published_at, first_seen_at, background)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(feed_id, dedup_key) DO NOTHING",
            )?;
            let mut insert_match = tx.prepare_cached(
                "INSERT INTO matches (item_id, story, verdict, score, baseline_id, why, matched_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (index, (item, verdict)) in items.iter().enumerate() {
                // Backlog needs a date to be judged old; an undated item counts as new.
                let background = matches!(
                    (item.published, background_before),
                    (Some(published), Some(before)) if published < before
                );
                let inserted = insert_item.execute(params![
                    feed_id,
                    item.dedup_key,
                    item.title,
                    item.summary,
                    item.content,
                    item.link,
                    item.source,
                    item.published.map(to_secs),
                    to_secs(now),
                    background,
                ])?;
                if inserted == 0 {
                    continue;
                }
                counts.new_items += 1;
                // The verdict of every story, the first story's first.
                let verdicts = std::iter::once((story, verdict)).chain(
                    more_verdicts
                        .iter()
                        .filter_map(|(name, vs)| vs.get(index).map(|v| (name.as_str(), v))),
                );
                if verdicts
                    .clone()
                    .all(|(_, v)| v.verdict == VerdictKind::OffTopic)
                {
                    // News that is not the story: what the stream background is made of.
                    stream.add(&Signature::of(&item.title, &item.summary).body);
                }
                if background {
                    counts.background += 1;
                    continue;
                }
                let item_id = tx.last_insert_rowid();
                let mut matched = false;
                for (story, verdict) in verdicts {
                    if verdict.verdict == VerdictKind::OffTopic {
                        continue;
                    }
                    let why = serde_json::to_string(&verdict.why)
                        .map_err(|err| StoreError::Corrupt(err.to_string()))?;
                    insert_match.execute(params![
                        item_id,
                        story,
                        verdict_name(verdict.verdict),
                        verdict.score,
                        verdict.baseline,
                        why,
                        to_secs(now),
                    ])?;
                    counts.new_matches += 1;
                    matched = true;
                }
                if matched {
                    groups::assign_group(&tx, item_id, item, &sign(item), now)?;
                }
            }
        }
        stream.write(&tx)?;
        tx.execute(
            "UPDATE feeds SET title = COALESCE(?2, title), etag = ?3, last_modified = ?4,
                    last_attempt_at = ?5, last_success_at = ?5, last_error = NULL,
                    last_error_kind = NULL, consecutive_failures = 0, next_poll_at = ?6,
                    interval_secs = COALESCE(?7, interval_secs)
             WHERE id = ?1",
            params![
                feed_id,
                feed_title,
                validators.etag,
                validators.last_modified,
                to_secs(now),
                to_secs(next_poll_at),
                interval.map(|i| i64::try_from(i.as_secs()).unwrap_or(i64::MAX)),
            ],
        )?;
        tx.commit()?;
        Ok(counts)
    }

    /// Records a 304: the feed is healthy and unchanged.
    pub fn record_not_modified(
        &mut self,
        feed_id: i64,
        now: Timestamp,
        next_poll_at: Timestamp,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE feeds SET last_attempt_at = ?2, last_success_at = ?2, last_error = NULL,
                    last_error_kind = NULL, consecutive_failures = 0, next_poll_at = ?3
             WHERE id = ?1",
            params![feed_id, to_secs(now), to_secs(next_poll_at)],
        )?;
        Ok(())
    }

    /// Records a failed poll; the caller computes the backoff into `next_poll_at`.
    pub fn record_failure(
        &mut self,
        feed_id: i64,
        kind: &str,
        message: &str,
        now: Timestamp,
        next_poll_at: Timestamp,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE feeds SET last_attempt_at = ?2, last_error = ?3, last_error_kind = ?4,
                    last_error_at = ?2, consecutive_failures = consecutive_failures + 1,
                    next_poll_at = ?5
             WHERE id = ?1",
            params![feed_id, to_secs(now), message, kind, to_secs(next_poll_at)],
        )?;
        Ok(())
    }

    /// Records that a feed answered with a permanent redirect: its stored URL becomes the new one
    /// unless another feed already has it.
    pub fn record_moved(&mut self, feed_id: i64, new_url: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE OR IGNORE feeds SET url = ?2 WHERE id = ?1",
            params![feed_id, new_url],
        )?;
        Ok(())
    }

    /// Matches, newest first.
    pub fn list_matches(&self, filter: &MatchFilter) -> Result<Vec<MatchRow>> {
        let limit = filter.limit.map_or(-1, |l| l as i64);
        let review = filter.review.map(Review::as_str);
        let verdict = filter.verdict.map(verdict_name);
        self.query_matches(
            "WHERE (?1 IS NULL OR m.review = ?1) AND (?3 IS NULL OR m.verdict = ?3)
               AND (?4 IS NULL OR m.story = ?4)
               AND (?5 IS NULL OR COALESCE(i.published_at, i.first_seen_at) >= ?5)
               AND (?6 IS NULL OR COALESCE(i.published_at, i.first_seen_at) < ?6)
             ORDER BY COALESCE(i.published_at, i.first_seen_at) DESC, i.id DESC, m.story
             LIMIT ?2 OFFSET ?7",
            params![
                review,
                limit,
                verdict,
                filter.story,
                filter.since.map(to_secs),
                filter.until.map(to_secs),
                filter.offset.unwrap_or(0) as i64
            ],
        )
    }

    /// One match by item id (the first story's when it matched several).
    pub fn get_match(&self, item_id: i64) -> Result<Option<MatchRow>> {
        Ok(self
            .query_matches(
                "WHERE m.item_id = ?1 ORDER BY m.story LIMIT 1",
                params![item_id],
            )?
            .pop())
    }

    /// Sets the review state of an item's matches; false when no such match exists. Marking
    /// unreviewed (undo) removes a match a reviewer added by hand, unless a digest carried it,
    /// so undo restores the state before the mark.
    pub fn mark(&mut self, item_id: i64, review: Review, now: Timestamp) -> Result<bool> {
        self.mark_matches(item_id, None, review, now)
    }

    /// [`Store::mark`] for the item's match in one story only: with several stories, an item
    /// can be a follow-up of one and a false alarm for another, and each story learns from its
    /// own marks.
    pub fn mark_for_story(
        &mut self,
        item_id: i64,
        story: &str,
        review: Review,
        now: Timestamp,
    ) -> Result<bool> {
        self.mark_matches(item_id, Some(story), review, now)
    }

    fn mark_matches(
        &mut self,
        item_id: i64,
        story: Option<&str>,
        review: Review,
        now: Timestamp,
    ) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut changed = 0;
        if review == Review::Unreviewed {
            changed += tx.execute(
                "DELETE FROM matches
                 WHERE item_id = ?1 AND origin = 'reviewer' AND digest_id IS NULL
                   AND (?2 IS NULL OR story = ?2)",
                params![item_id, story],
            )?;
        }
        changed += tx.execute(
            "UPDATE matches SET review = ?2, reviewed_at = ?3
             WHERE item_id = ?1 AND (?4 IS NULL OR story = ?4)",
            params![item_id, review.as_str(), to_secs(now), story],
        )?;
        tx.commit()?;
        Ok(changed > 0)
    }

    fn query_matches(&self, tail: &str, args: impl rusqlite::Params) -> Result<Vec<MatchRow>> {
        query_matches(&self.conn, tail, args)
    }
}

/// The summary shown for item `i`: its own, or for an item whose feed carries only body text
/// (JSON Feed `content_text`, Atom `<content>`, RSS `content:encoded`) the start of that text,
/// so every digest entry and review line has something to read.
pub(crate) const SHOWN_SUMMARY: &str =
    "CASE WHEN trim(i.summary) = '' THEN substr(i.content, 1, 1000) ELSE i.summary END";

/// Matches with their items, filtered and ordered by the SQL `tail`.
fn query_matches(
    conn: &Connection,
    tail: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<MatchRow>> {
    {
        let sql = format!(
            "SELECT i.id, m.story, i.title, {SHOWN_SUMMARY}, i.link, COALESCE(i.source, f.title), f.url,
                    i.published_at, i.first_seen_at, m.verdict, m.score, m.baseline_id, m.why,
                    m.review, m.digest_id, i.group_id,
                    (SELECT group_concat(outlet, char(31)) FROM (
                        SELECT COALESCE(o.source, gf.title, gf.url) AS outlet
                        FROM items o JOIN feeds gf ON gf.id = o.feed_id
                        WHERE o.group_id = i.group_id AND o.id != i.id
                        ORDER BY COALESCE(o.published_at, o.first_seen_at), o.id)),
                    EXISTS (SELECT 1 FROM items o JOIN matches om ON om.item_id = o.id
                            WHERE o.group_id = i.group_id AND o.id != i.id
                              AND om.story = m.story AND om.digest_id IS NOT NULL)
             FROM matches m JOIN items i ON i.id = m.item_id JOIN feeds f ON f.id = i.feed_id
             {tail}"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let raw = stmt.query_map(args, |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, Option<i64>>(7)?,
                row.get::<_, i64>(8)?,
                row.get::<_, String>(9)?,
                row.get::<_, f64>(10)?,
                row.get::<_, Option<String>>(11)?,
                row.get::<_, String>(12)?,
                row.get::<_, String>(13)?,
                row.get::<_, Option<i64>>(14)?,
                row.get::<_, Option<i64>>(15)?,
                row.get::<_, Option<String>>(16)?,
                row.get::<_, bool>(17)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in raw {
            let (
                id,
                story,
                title,
                summary,
                link,
                source,
                feed_url,
                published,
                seen,
                verdict,
                score,
                baseline,
                why,
                review,
                digest_id,
                group_id,
                others,
                group_sent,
            ) = row?;
            let mut also_reported_by: Vec<String> = Vec::new();
            for outlet in others.as_deref().unwrap_or("").split('\u{1f}') {
                if !outlet.is_empty()
                    && source.as_deref() != Some(outlet)
                    && !also_reported_by.iter().any(|o| o == outlet)
                {
                    also_reported_by.push(outlet.to_string());
                }
            }
            out.push(MatchRow {
                id,
                story,
                title,
                summary,
                link,
                source,
                feed_url,
                published_at: from_secs(published),
                first_seen_at: from_secs(Some(seen)).unwrap_or(Timestamp::UNIX_EPOCH),
                verdict: parse_verdict(&verdict)?,
                score,
                baseline,
                why: serde_json::from_str(&why)
                    .map_err(|err| StoreError::Corrupt(format!("why: {err}")))?,
                review: Review::parse(&review)?,
                digest_id,
                group_id,
                also_reported_by,
                group_sent,
            });
        }
        Ok(out)
    }
}

impl Store {
    /// Gathers what a digest ending `now` would contain, without changing anything.
    pub fn digest_input(&self, now: Timestamp) -> Result<DigestInput> {
        digest_input(&self.conn, now)
    }
}

impl Store {
    /// Builds and stores a digest in one transaction: the rendered text, the matches it covers
    /// (so no later digest repeats them) and one pending delivery per channel. Nothing is sent
    /// here; [`Store::pending_deliveries`] hands the deliveries out afterwards. `render` returns
    /// `None` to store nothing (an empty day under the `skip` policy).
    pub fn create_digest(
        &mut self,
        now: Timestamp,
        channels: &[String],
        render: impl FnOnce(&DigestInput) -> Option<NewDigest>,
    ) -> Result<Option<DigestRow>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read inside the write transaction: a second process building a digest at the same
        // moment waits here and then sees these matches claimed, so none is in two digests.
        let input = digest_input(&tx, now)?;
        // A skipped (empty) digest serves its slot as a built one does, so a restart does not
        // take the day for missed ([`Store::last_digest_run`]).
        tx.execute(
            "INSERT INTO digest_schedule (id, last_run) VALUES (1, ?1)
             ON CONFLICT(id) DO UPDATE SET last_run = MAX(last_run, excluded.last_run)",
            params![to_secs(now)],
        )?;
        let Some(NewDigest { markdown, model }) = render(&input) else {
            tx.commit()?;
            return Ok(None);
        };
        tx.execute(
            "INSERT INTO digests (created_at, period_start, period_end, match_count, markdown, model)
             VALUES (?1, ?2, ?1, ?3, ?4, ?5)",
            params![
                to_secs(now),
                input.period_start.map(to_secs),
                input.matches.len() as i64,
                markdown,
                model
            ],
        )?;
        let digest_id = tx.last_insert_rowid();
        {
            let mut claim =
                tx.prepare("UPDATE matches SET digest_id = ?1 WHERE item_id = ?2 AND story = ?3 AND digest_id IS NULL")?;
            for m in &input.matches {
                claim.execute(params![digest_id, m.id, m.story])?;
            }
            let mut pending = tx.prepare(
                "INSERT INTO deliveries (digest_id, channel, state) VALUES (?1, ?2, 'pending')",
            )?;
            for channel in channels {
                pending.execute(params![digest_id, channel])?;
            }
        }
        tx.commit()?;
        Ok(Some(DigestRow {
            id: digest_id,
            created_at: now,
            period_start: input.period_start,
            period_end: now,
            match_count: input.matches.len(),
            markdown,
            model: Some(model),
        }))
    }

    /// The totals `/metrics` reports from the database.
    pub fn stored_counts(&self) -> Result<crate::metrics::StoredCounts> {
        let items: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM items", [], |row| row.get(0))?;
        let mut stmt = self
            .conn
            .prepare("SELECT verdict, COUNT(*) FROM matches GROUP BY verdict ORDER BY verdict")?;
        let matches = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self
            .conn
            .prepare("SELECT channel, state, COUNT(*) FROM deliveries GROUP BY channel, state ORDER BY channel, state")?;
        let deliveries = stmt
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? as u64))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let (feeds, feeds_failing): (i64, i64) = self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(consecutive_failures > 0 AND disabled_reason IS NULL), 0)
             FROM feeds WHERE active = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        Ok(crate::metrics::StoredCounts {
            items: items as u64,
            matches,
            deliveries,
            feeds: feeds as u64,
            feeds_failing: feeds_failing as u64,
        })
    }

    /// When a digest was last due and decided — built, or skipped as empty — by this database's
    /// record; the schedule counts missed slots from here.
    pub fn last_digest_run(&self) -> Result<Option<Timestamp>> {
        let last: Option<i64> = self.conn.query_row(
            "SELECT MAX(t) FROM (SELECT last_run AS t FROM digest_schedule
                                 UNION ALL SELECT MAX(created_at) FROM digests)",
            [],
            |row| row.get(0),
        )?;
        Ok(from_secs(last))
    }

    /// The most recent digest.
    pub fn last_digest(&self) -> Result<Option<DigestRow>> {
        self.conn
            .query_row(
                "SELECT id, created_at, period_start, period_end, match_count, markdown, model
                 FROM digests ORDER BY id DESC LIMIT 1",
                [],
                digest_from_row,
            )
            .optional()
            .map_err(StoreError::from)
    }

    /// Deliveries not yet made whose next attempt is due at `now` and that no process is
    /// making, oldest digest first. Read-only: [`Store::claim_due_deliveries`] is what a
    /// sender uses.
    pub fn pending_deliveries(&self, now: Timestamp) -> Result<Vec<PendingDelivery>> {
        due_deliveries(&self.conn, now)
    }

    /// Takes the due deliveries for this process — all of them, or with `only` the one of that
    /// digest and channel: each is claimed in this process's name until `now + lease`, so a
    /// second process (`digest --now` beside the daemon) skips it instead of sending it too.
    /// [`Store::record_delivery`] ends the claim; a claim left by a crash expires, or is freed
    /// sooner by [`Store::release_orphaned_claims`].
    pub fn claim_due_deliveries(
        &mut self,
        now: Timestamp,
        lease: std::time::Duration,
        only: Option<(i64, &str)>,
    ) -> Result<Vec<PendingDelivery>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut due = due_deliveries(&tx, now)?;
        if let Some((digest_id, channel)) = only {
            due.retain(|d| d.digest.id == digest_id && d.channel == channel);
        }
        let until = to_secs(now).saturating_add(lease.as_secs() as i64);
        for delivery in &due {
            tx.execute(
                "UPDATE deliveries SET claimed_until = ?3, claimed_by = ?4
                 WHERE digest_id = ?1 AND channel = ?2",
                params![
                    delivery.digest.id,
                    delivery.channel,
                    until,
                    std::process::id()
                ],
            )?;
        }
        tx.commit()?;
        Ok(due)
    }

    /// Drops this process's claim on one delivery it decided not to make now.
    pub fn release_claim(&mut self, digest_id: i64, channel: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE deliveries SET claimed_until = NULL, claimed_by = NULL
             WHERE digest_id = ?1 AND channel = ?2",
            params![digest_id, channel],
        )?;
        Ok(())
    }

    /// Frees the live claims whose process has ended (`running(pid)` is false) — left by a
    /// `kill -9` — so a starting daemon resends them at once instead of waiting out the lease.
    /// A claim held by a running process (a `digest --now` or `digest resend` beside it) is
    /// left alone: that process may be sending it right now. So is one of unknown owner. A
    /// claim in this process's own id is a dead predecessor's (this process claimed nothing
    /// yet). Returns how many were freed.
    pub fn release_orphaned_claims(
        &mut self,
        now: Timestamp,
        running: impl Fn(u32) -> bool,
    ) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let owners: Vec<i64> = {
            let mut stmt = tx.prepare(
                "SELECT DISTINCT claimed_by FROM deliveries
                 WHERE claimed_until > ?1 AND claimed_by IS NOT NULL",
            )?;
            stmt.query_map(params![to_secs(now)], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut freed = 0;
        for owner in owners {
            let gone =
                u32::try_from(owner).map_or(true, |pid| pid == std::process::id() || !running(pid));
            if gone {
                freed += tx.execute(
                    "UPDATE deliveries SET claimed_until = NULL, claimed_by = NULL
                     WHERE claimed_by = ?1",
                    params![owner],
                )?;
            }
        }
        tx.commit()?;
        Ok(freed)
    }

    /// When the earliest pending delivery is due at `now`, if any is pending. One another
    /// process has claimed is looked at again every [`CLAIM_RECHECK`] until its claim ends —
    /// that process may record its outcome any moment — so a daemon beside a `digest --now`
    /// neither spins on a delivery it may not take nor oversleeps a retry it then owes.
    pub fn next_delivery_due(&self, now: Timestamp) -> Result<Option<Timestamp>> {
        let now = to_secs(now);
        let next: Option<i64> = self.conn.query_row(
            "SELECT MIN(CASE WHEN claimed_until > ?1 THEN MIN(claimed_until, ?1 + ?2)
                             ELSE next_attempt_at END)
             FROM deliveries WHERE state = 'pending'",
            params![now, CLAIM_RECHECK.as_secs() as i64],
            |row| row.get(0),
        )?;
        Ok(next.map(|secs| from_secs(Some(secs)).unwrap_or(Timestamp::UNIX_EPOCH)))
    }

    /// Digests, newest first.
    pub fn list_digests(&self, limit: usize) -> Result<Vec<DigestRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, created_at, period_start, period_end, match_count, markdown, model
             FROM digests ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit as i64], digest_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One digest by id.
    pub fn get_digest(&self, id: i64) -> Result<Option<DigestRow>> {
        self.conn
            .query_row(
                "SELECT id, created_at, period_start, period_end, match_count, markdown, model
                 FROM digests WHERE id = ?1",
                params![id],
                digest_from_row,
            )
            .optional()
            .map_err(StoreError::from)
    }

    /// Every channel's delivery state of one digest, by channel name.
    pub fn deliveries(&self, digest_id: i64) -> Result<Vec<DeliveryRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT digest_id, channel, state, attempts, last_error, delivered_at, next_attempt_at
             FROM deliveries WHERE digest_id = ?1 ORDER BY channel",
        )?;
        let rows = stmt.query_map(params![digest_id], |row| {
            let state: String = row.get(2)?;
            let next: i64 = row.get(6)?;
            Ok(DeliveryRow {
                digest_id: row.get(0)?,
                channel: row.get(1)?,
                next_attempt_at: (state == "pending")
                    .then(|| from_secs(Some(next)))
                    .flatten(),
                state,
                attempts: row.get(3)?,
                last_error: row.get(4)?,
                delivered_at: from_secs(row.get(5)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Queues digest `digest_id` for `channel` again, due now (a new delivery, or a delivered
    /// or failed one made pending with its attempts reset and its generation raised, so the
    /// resend is a new message rather than a repeat a receiver would drop). Only that one
    /// delivery changes. False when there is no such digest.
    pub fn requeue_delivery(&mut self, digest_id: i64, channel: &str) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM digests WHERE id = ?1)",
            params![digest_id],
            |row| row.get(0),
        )?;
        if !exists {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO deliveries (digest_id, channel, state, next_attempt_at)
             VALUES (?1, ?2, 'pending', 0)
             ON CONFLICT(digest_id, channel) DO UPDATE SET state = 'pending', attempts = 0,
                 last_error = NULL, next_attempt_at = 0, claimed_until = NULL, claimed_by = NULL,
                 generation = generation + 1",
            params![digest_id, channel],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Records one delivery attempt. A failure stays pending, next tried at `retry_at`, or is
    /// marked failed when `retry_at` is `None` (the attempt limit was reached).
    pub fn record_delivery(
        &mut self,
        digest_id: i64,
        channel: &str,
        outcome: std::result::Result<(), String>,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<()> {
        match outcome {
            Ok(()) => self.conn.execute(
                "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1,
                        delivered_at = ?3, last_attempt_at = ?3, last_error = NULL,
                        claimed_until = NULL
                 WHERE digest_id = ?1 AND channel = ?2",
                params![digest_id, channel, to_secs(now)],
            )?,
            Err(error) => self.conn.execute(
                "UPDATE deliveries SET state = CASE WHEN ?4 IS NULL THEN 'failed' ELSE 'pending' END,
                        attempts = attempts + 1, last_error = ?3, last_attempt_at = ?5,
                        next_attempt_at = COALESCE(?4, next_attempt_at), claimed_until = NULL
                 WHERE digest_id = ?1 AND channel = ?2",
                params![
                    digest_id,
                    channel,
                    error,
                    retry_at.map(to_secs),
                    to_secs(now)
                ],
            )?,
        };
        Ok(())
    }
}

/// What a digest ending `now` would contain, read on `conn` (a transaction when building).
fn digest_input(conn: &Connection, now: Timestamp) -> Result<DigestInput> {
    let matches = query_matches(
        conn,
        "WHERE m.digest_id IS NULL AND m.review != 'irrelevant'
         ORDER BY COALESCE(i.published_at, i.first_seen_at) DESC, i.id DESC",
        [],
    )?;
    let period_start: Option<i64> =
        conn.query_row("SELECT MAX(period_end) FROM digests", [], |row| row.get(0))?;
    let items_scanned: i64 = conn.query_row(
        "SELECT COUNT(*) FROM items WHERE first_seen_at > ?1 AND first_seen_at <= ?2",
        params![period_start.unwrap_or(i64::MIN), to_secs(now)],
        |row| row.get(0),
    )?;
    let feeds_polled: i64 =
        conn.query_row("SELECT COUNT(*) FROM feeds WHERE active = 1", [], |row| {
            row.get(0)
        })?;
    // A feed that failed during the period and answers again is named too: the reader should
    // know the period's coverage had a hole, not only what is broken right now. (Times are in
    // seconds: a failure in the previous digest's last second is named by both.)
    let mut stmt = conn.prepare(
        "SELECT COALESCE(title, url), last_error, disabled_reason, consecutive_failures > 0,
                last_error_at
         FROM feeds
         WHERE active = 1 AND (consecutive_failures > 0 OR disabled_reason IS NOT NULL
                               OR last_error_at >= ?1 OR disabled_at >= ?1)
         ORDER BY url",
    )?;
    let failing_feeds = stmt
        .query_map(params![period_start.unwrap_or(i64::MIN)], |row| {
            Ok(FeedTrouble {
                feed: row.get(0)?,
                error: row.get(1)?,
                disabled: row.get(2)?,
                failing_now: row.get(3)?,
                last_failed_at: from_secs(row.get(4)?),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(DigestInput {
        matches,
        period_start: from_secs(period_start),
        period_end: now,
        items_scanned: items_scanned as u64,
        feeds_polled: feeds_polled as u64,
        failing_feeds,
    })
}

fn due_deliveries(conn: &Connection, now: Timestamp) -> Result<Vec<PendingDelivery>> {
    let mut stmt = conn.prepare(
        "SELECT d.id, d.created_at, d.period_start, d.period_end, d.match_count, d.markdown,
                d.model, v.channel, v.attempts, v.generation
         FROM deliveries v JOIN digests d ON d.id = v.digest_id
         WHERE v.state = 'pending' AND v.next_attempt_at <= ?1
               AND (v.claimed_until IS NULL OR v.claimed_until <= ?1)
         ORDER BY d.id, v.channel",
    )?;
    let rows = stmt.query_map(params![to_secs(now)], |row| {
        Ok(PendingDelivery {
            digest: digest_from_row(row)?,
            channel: row.get(7)?,
            attempts: row.get(8)?,
            generation: row.get(9)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn digest_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DigestRow> {
    Ok(DigestRow {
        id: row.get(0)?,
        created_at: from_secs(row.get(1)?).unwrap_or(Timestamp::UNIX_EPOCH),
        period_start: from_secs(row.get(2)?),
        period_end: from_secs(row.get(3)?).unwrap_or(Timestamp::UNIX_EPOCH),
        match_count: row.get::<_, i64>(4)? as usize,
        markdown: row.get(5)?,
        model: row.get(6)?,
    })
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let known = migrations::MIGRATIONS.len() as i64;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    for (version, sql) in migrations::MIGRATIONS
        .iter()
        .enumerate()
        .skip(found as usize)
    {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn item(key: &str, title: &str) -> Item {
        Item {
            dedup_key: key.into(),
            title: title.into(),
            summary: "summary".into(),
            content: String::new(),
            link: Some(format!("https://news.example/{key}")),
            published: Some(Timestamp::from_second(1_700_000_000).unwrap()),
            source: Some("Wire".into()),
        }
    }

    fn verdict(kind: VerdictKind) -> Verdict {
        Verdict {
            verdict: kind,
            score: 0.8,
            baseline: Some("002_x".into()),
            why: vec!["terms: fentanyl".into()],
        }
    }

    fn feed(url: &str) -> FeedConfig {
        FeedConfig {
            url: url.into(),
            interval: Duration::from_secs(1800),
            title: None,
        }
    }

    fn poll<'a>(feed_id: i64, items: &'a [(Item, Verdict)], now: Timestamp) -> FetchedPoll<'a> {
        const NO_VALIDATORS: &Validators = &Validators {
            etag: None,
            last_modified: None,
        };
        FetchedPoll {
            feed_id,
            story: "s",
            feed_title: Some("A"),
            validators: NO_VALIDATORS,
            items,
            more_verdicts: &[],
            now,
            next_poll_at: now,
            background_before: None,
            interval: None,
            sign: &unsigned,
        }
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sub/test.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn read_only_open_never_creates_or_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.db");
        let err = Store::open_read_only(&path).unwrap_err();
        assert!(matches!(err, StoreError::Missing { .. }), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut store = Store::open(&path).unwrap();
        store.sync_feeds(&[feed("https://a.example/rss")]).unwrap();
        drop(store);
        let mut reader = Store::open_read_only(&path).unwrap();
        assert_eq!(reader.feed_statuses().unwrap().len(), 1);
        assert!(
            reader.sync_feeds(&[]).is_err(),
            "a read-only store refuses writes"
        );
    }

    #[test]
    fn stream_statistics_count_new_items_no_story_matched_once() {
        let (_dir, mut store) = open();
        store.sync_feeds(&[feed("https://a.example/f")]).unwrap();
        let feed_id = store.active_feeds().unwrap()[0].id;
        let now = Timestamp::now();
        let batch = vec![
            (item("1", "fentanyl talks"), verdict(VerdictKind::FollowUp)),
            (item("2", "weather warning"), verdict(VerdictKind::OffTopic)),
            (item("3", "weather report"), verdict(VerdictKind::OffTopic)),
        ];
        store.record_fetched(&poll(feed_id, &batch, now)).unwrap();
        // Seen again: not counted again.
        store.record_fetched(&poll(feed_id, &batch, now)).unwrap();
        let stats = store.stream_stats().unwrap();
        assert_eq!(stats.documents, 2);
        assert_eq!(store.stream_documents().unwrap(), 2);
        let count = |t: &str| stats.terms.iter().find(|(x, _)| x == t).map(|(_, n)| *n);
        assert_eq!(count("weather"), Some(2));
        assert_eq!(count("warn"), Some(1));
        // The match's words are not background.
        assert_eq!(count("fentanyl"), None);
        assert_eq!(count("talk"), None);
        // "summary" is in every item's summary, but counted once per counted item.
        assert_eq!(count("summari"), Some(2));
    }

    #[test]
    fn items_are_unique_per_feed_and_matches_only_for_on_topic() {
        let (_dir, mut store) = open();
        store.sync_feeds(&[feed("https://a.example/f")]).unwrap();
        let feed_id = store.active_feeds().unwrap()[0].id;
        let now = Timestamp::now();
        let batch = vec![
            (item("1", "fentanyl talks"), verdict(VerdictKind::FollowUp)),
            (item("2", "weather"), verdict(VerdictKind::OffTopic)),
        ];
        let counts = store.record_fetched(&poll(feed_id, &batch, now)).unwrap();
        assert_eq!(
            counts,
            PollCounts {
                new_items: 2,
                new_matches: 1,
                background: 0,
            }
        );
        let again = store.record_fetched(&poll(feed_id, &batch, now)).unwrap();
        assert_eq!(again, PollCounts::default());
        let matches = store.list_matches(&MatchFilter::default()).unwrap();
        assert_eq!(matches.len(), 1);
        assert_eq!(matches[0].source.as_deref(), Some("Wire"));
        assert_eq!(matches[0].why, vec!["terms: fentanyl".to_string()]);
    }

    fn new_digest(input: &DigestInput) -> Option<NewDigest> {
        Some(NewDigest {
            markdown: format!("{} matches", input.matches.len()),
            model: "{}".into(),
        })
    }

    #[test]
    fn a_skipped_digest_still_counts_as_run() {
        let (_dir, mut store) = open();
        assert_eq!(store.last_digest_run().unwrap(), None);
        let first: Timestamp = "2026-01-10T07:00:00Z".parse().unwrap();
        let built = store
            .create_digest(first, &["file".to_string()], new_digest)
            .unwrap();
        assert!(built.is_some());
        assert_eq!(store.last_digest_run().unwrap(), Some(first));
        let skipped: Timestamp = "2026-01-11T07:00:00Z".parse().unwrap();
        let none = store
            .create_digest(skipped, &["file".to_string()], |_| None)
            .unwrap();
        assert!(none.is_none());
        assert_eq!(store.list_digests(10).unwrap().len(), 1);
        assert_eq!(store.last_digest_run().unwrap(), Some(skipped));
    }

    #[test]
    fn digest_claims_matches_once_and_queues_deliveries() {
        let (_dir, mut store) = open();
        store.sync_feeds(&[feed("https://a.example/f")]).unwrap();
        let feed_id = store.active_feeds().unwrap()[0].id;
        let now = Timestamp::now();
        let batch = vec![(item("1", "t"), verdict(VerdictKind::FollowUp))];
        store.record_fetched(&poll(feed_id, &batch, now)).unwrap();
        let channels = vec!["file".to_string(), "stdout".to_string()];
        let digest = store
            .create_digest(now, &channels, new_digest)
            .unwrap()
            .unwrap();
        assert_eq!(digest.match_count, 1);
        assert_eq!(digest.model.as_deref(), Some("{}"));
        assert_eq!(store.pending_deliveries(now).unwrap().len(), 2);
        store
            .record_delivery(digest.id, "file", Ok(()), None, now)
            .unwrap();
        let later = Timestamp::from_second(now.as_second() + 60).unwrap();
        store
            .record_delivery(digest.id, "stdout", Err("boom".into()), Some(later), now)
            .unwrap();
        // Not due again before its backoff ends.
        assert!(store.pending_deliveries(now).unwrap().is_empty());
        assert_eq!(store.next_delivery_due(now).unwrap(), Some(later));
        let pending = store.pending_deliveries(later).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            (pending[0].channel.as_str(), pending[0].attempts),
            ("stdout", 1)
        );
        // Giving up marks it failed.
        store
            .record_delivery(digest.id, "stdout", Err("boom".into()), None, later)
            .unwrap();
        assert!(store.pending_deliveries(later).unwrap().is_empty());
        let states: Vec<(String, String)> = store
            .deliveries(digest.id)
            .unwrap()
            .into_iter()
            .map(|d| (d.channel, d.state))
            .collect();
        assert_eq!(
            states,
            vec![
                ("file".to_string(), "delivered".to_string()),
                ("stdout".to_string(), "failed".to_string())
            ]
        );
        // Resend queues that one delivery again, due now, as a new generation; the other
        // channel's delivered row is untouched; an unknown digest is refused.
        assert!(store.requeue_delivery(digest.id, "stdout").unwrap());
        let pending = store.pending_deliveries(now).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            (pending[0].channel.as_str(), pending[0].generation),
            ("stdout", 1)
        );
        assert_eq!(store.deliveries(digest.id).unwrap()[0].state, "delivered");
        // A claimed delivery is invisible to a second sender until released or expired.
        let claimed = store
            .claim_due_deliveries(now, Duration::from_secs(600), None)
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert!(store.pending_deliveries(now).unwrap().is_empty());
        assert_eq!(
            store.next_delivery_due(now).unwrap(),
            Some(Timestamp::from_second(now.as_second() + 2).unwrap()),
            "a claimed delivery is looked at again soon, not at once"
        );
        // A starting daemon leaves a live claim of a running process alone (this test's own
        // id counts as a predecessor's, so the owner is made another process here)...
        store
            .conn
            .execute("UPDATE deliveries SET claimed_by = claimed_by + 1", [])
            .unwrap();
        assert_eq!(store.release_orphaned_claims(now, |_| true).unwrap(), 0);
        assert!(store.pending_deliveries(now).unwrap().is_empty());
        // ...and frees the claim of one that has ended.
        assert_eq!(store.release_orphaned_claims(now, |_| false).unwrap(), 1);
        assert!(!store.requeue_delivery(999, "stdout").unwrap());
        assert_eq!(store.pending_deliveries(now).unwrap().len(), 1);
        assert!(
            store
                .claim_due_deliveries(now, Duration::from_secs(600), Some((digest.id, "file")))
                .unwrap()
                .is_empty(),
            "only the named delivery is claimed, and file's is delivered"
        );
        assert_eq!(store.pending_deliveries(now).unwrap().len(), 1);

        let second = store
            .create_digest(now, &channels, new_digest)
            .unwrap()
            .unwrap();
        assert_eq!(second.match_count, 0);
        let listed: Vec<i64> = store
            .list_digests(10)
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(listed, vec![second.id, digest.id]);
        assert_eq!(
            store.get_digest(digest.id).unwrap().unwrap().markdown,
            "1 matches"
        );
    }

    #[test]
    fn marking_and_filters() {
        let (_dir, mut store) = open();
        store.sync_feeds(&[feed("https://a.example/f")]).unwrap();
        let feed_id = store.active_feeds().unwrap()[0].id;
        let now = Timestamp::now();
        let batch = vec![
            (item("1", "t"), verdict(VerdictKind::FollowUp)),
            (item("2", "u"), verdict(VerdictKind::Related)),
        ];
        store.record_fetched(&poll(feed_id, &batch, now)).unwrap();
        let id = store.list_matches(&MatchFilter::default()).unwrap()[0].id;
        assert!(store.mark(id, Review::Relevant, now).unwrap());
        assert!(!store.mark(9999, Review::Relevant, now).unwrap());
        let relevant = store
            .list_matches(&MatchFilter {
                review: Some(Review::Relevant),
                ..MatchFilter::default()
            })
            .unwrap();
        assert_eq!(relevant.len(), 1);
        assert_eq!(
            store.get_match(id).unwrap().unwrap().review,
            Review::Relevant
        );
    }

    #[test]
    fn failures_count_and_feeds_deactivate() {
        let (_dir, mut store) = open();
        store
            .sync_feeds(&[feed("https://a.example/f"), feed("https://b.example/f")])
            .unwrap();
        let feed_id = store.active_feeds().unwrap()[0].id;
        let now = Timestamp::now();
        store
            .record_failure(feed_id, "timeout", "timed out after 20s", now, now)
            .unwrap();
        store
            .record_failure(feed_id, "timeout", "timed out after 20s", now, now)
            .unwrap();
        let status = &store.feed_statuses().unwrap()[0];
        assert_eq!(status.consecutive_failures, 2);
        assert_eq!(status.last_error_kind.as_deref(), Some("timeout"));
        store.sync_feeds(&[feed("https://b.example/f")]).unwrap();
        assert_eq!(store.active_feeds().unwrap().len(), 1);
    }

    #[test]
    fn backlog_items_are_stored_without_matches() {
        let (_dir, mut store) = open();
        store.sync_feeds(&[feed("https://a.example/f")]).unwrap();
        let feed_id = store.active_feeds().unwrap()[0].id;
        assert!(store.active_feeds().unwrap()[0].first_poll);
        let now = Timestamp::now();
        let mut fresh = item("new", "fentanyl talks resume");
        fresh.published = Some(now);
        let batch = vec![
            (
                item("old", "fentanyl talks"),
                verdict(VerdictKind::FollowUp),
            ),
            (fresh, verdict(VerdictKind::FollowUp)),
        ];
        let mut first = poll(feed_id, &batch, now);
        first.background_before = Some(now - jiff::SignedDuration::from_hours(24 * 7));
        let counts = store.record_fetched(&first).unwrap();
        assert_eq!(
            (counts.new_items, counts.new_matches, counts.background),
            (2, 1, 1)
        );
        assert!(!store.active_feeds().unwrap()[0].first_poll);
        let matches = store.list_matches(&MatchFilter::default()).unwrap();
        assert_eq!(matches.len(), 1);
        assert_eq!(matches[0].title, "fentanyl talks resume");
    }

    #[test]
    fn moved_feeds_keep_their_config_identity_and_gone_feeds_stay_off() {
        let (_dir, mut store) = open();
        let old = feed("https://a.example/old");
        store.sync_feeds(std::slice::from_ref(&old)).unwrap();
        let id = store.active_feeds().unwrap()[0].id;
        store.record_moved(id, "https://a.example/new").unwrap();
        // The config still lists the old URL: same row, polled at the new URL.
        store.sync_feeds(std::slice::from_ref(&old)).unwrap();
        let rows = store.active_feeds().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].id, rows[0].url.as_str()),
            (id, "https://a.example/new")
        );
        assert_eq!(rows[0].config_url, "https://a.example/old");

        // Disabled: not scheduled, still listed with its reason, across syncs.
        store
            .disable_feed(id, "410 Gone", Timestamp::now())
            .unwrap();
        store.sync_feeds(std::slice::from_ref(&old)).unwrap();
        assert!(store.active_feeds().unwrap().is_empty());
        let status = &store.feed_statuses().unwrap()[0];
        assert_eq!(status.disabled_reason.as_deref(), Some("410 Gone"));
        // A changed config entry re-enables it.
        let mut changed = old.clone();
        changed.interval = Duration::from_secs(3600);
        store.sync_feeds(std::slice::from_ref(&changed)).unwrap();
        assert_eq!(store.active_feeds().unwrap().len(), 1);
        store
            .disable_feed(id, "410 Gone", Timestamp::now())
            .unwrap();
        assert!(store.enable_feed("https://a.example/new").unwrap());
        assert_eq!(store.active_feeds().unwrap().len(), 1);
        assert!(!store.enable_feed("https://elsewhere.example/").unwrap());

        // The user follows the move in the config: the row is adopted, items kept.
        store.sync_feeds(&[feed("https://a.example/new")]).unwrap();
        let rows = store.active_feeds().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, id);
        assert_eq!(rows[0].config_url, "https://a.example/new");
    }

    #[test]
    fn reopening_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        {
            let mut store = Store::open(&path).unwrap();
            store.sync_feeds(&[feed("https://a.example/f")]).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.active_feeds().unwrap().len(), 1);
    }

    #[test]
    fn newer_schema_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Store::open(&path).unwrap_err().to_string();
        assert!(err.contains("upgrade storywatch"), "{err}");
    }
}
