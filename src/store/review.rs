//! Store operations for reviewing: full-text search over every stored item, matches a reviewer
//! adds by hand, the marks the profile update learns from, re-running the matcher over stored
//! items, and the database side of readiness.
//!
//! Kept in its own file so the review work merges around the rest of the store.

use jiff::Timestamp;
use rusqlite::{TransactionBehavior, params};
use serde::Serialize;

use super::{
    MatchFilter, Result, Review, SHOWN_SUMMARY, Store, StoreError, from_secs, parse_verdict,
    to_secs, verdict_name,
};
use crate::item::Item;
use crate::story::neardup::Signature;
use crate::story::{Verdict, VerdictKind};

/// The reason stored as the `why` of a match a reviewer added.
pub const REVIEWER_ADDED_WHY: &str =
    "not matched by the profile; marked relevant by a reviewer (a missed follow-up)";

/// Who made a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchOrigin {
    /// The matcher's verdict.
    Matcher,
    /// A reviewer marked an unmatched search result relevant.
    Reviewer,
}

impl MatchOrigin {
    fn parse(text: &str) -> Result<MatchOrigin> {
        match text {
            "matcher" => Ok(MatchOrigin::Matcher),
            "reviewer" => Ok(MatchOrigin::Reviewer),
            other => Err(StoreError::Corrupt(format!("match origin {other:?}"))),
        }
    }
}

/// One full-text search result: any stored item, with its match when it has one.
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    /// The item's id.
    pub id: i64,
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
    /// The story of the match this hit shows; `None` for an item not matched (in the story
    /// searched for, or in any).
    pub story: Option<String>,
    /// The match's verdict, when the item is matched.
    pub verdict: Option<VerdictKind>,
    /// The match's review state, when the item is matched.
    pub review: Option<Review>,
}

/// A reviewed match with the item's full text: what the profile update learns from.
#[derive(Debug, Clone)]
pub struct MarkedItem {
    /// The item's id.
    pub id: i64,
    /// The item as stored.
    pub item: Item,
    /// Relevant or irrelevant (never unreviewed).
    pub review: Review,
    /// Whether the matcher found it or a reviewer added it (a missed follow-up).
    pub origin: MatchOrigin,
    /// The verdict stored with the match.
    pub verdict: VerdictKind,
    /// The score stored with the match.
    pub score: f64,
    /// When it was marked.
    pub reviewed_at: Option<Timestamp>,
}

/// One line of a rescore report.
#[derive(Debug, Clone, Serialize)]
pub struct RescoreChange {
    /// The item's id.
    pub id: i64,
    /// Headline.
    pub title: String,
    /// The stored verdict before (None: not matched).
    pub before: Option<VerdictKind>,
    /// The new verdict.
    pub after: VerdictKind,
    /// The new score.
    pub score: f64,
    /// The match's review state, when it had one.
    pub review: Option<Review>,
}

/// What re-running the matcher over stored items changes (or would change).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RescoreReport {
    /// Items scored.
    pub scanned: usize,
    /// Items that become matches.
    pub new_matches: Vec<RescoreChange>,
    /// Unreviewed, undigested matches that are removed.
    pub dropped: Vec<RescoreChange>,
    /// Matches the profile no longer matches but that stay, because a person reviewed them or a
    /// digest already carried them.
    pub kept: Vec<RescoreChange>,
    /// Matches whose verdict kind changed (review state kept).
    pub changed: Vec<RescoreChange>,
}

/// Database-side readiness: is polling keeping up?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollLag {
    /// Active feeds.
    pub feeds: usize,
    /// The earliest due time among active feeds (None: no active feed).
    pub earliest_due: Option<Timestamp>,
    /// The latest poll attempt of any feed.
    pub last_attempt: Option<Timestamp>,
}

/// Turns what a person typed into an FTS5 query that cannot be a syntax error: every word is
/// quoted (so `AND`, `-`, `:` and quotes are plain text) and all words must occur; a trailing
/// `*` keeps its prefix meaning. `None` when nothing searchable is left.
pub fn fts_query(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split_whitespace()
        .filter_map(|word| {
            let (word, prefix) = match word.strip_suffix('*') {
                Some(stem) => (stem, true),
                None => (word, false),
            };
            let word: String = word.chars().filter(|c| !c.is_control()).collect();
            if !word.chars().any(char::is_alphanumeric) {
                return None;
            }
            let quoted = format!("\"{}\"", word.replace('"', "\"\""));
            Some(if prefix { format!("{quoted}*") } else { quoted })
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

fn item_from_row(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Item> {
    Ok(Item {
        dedup_key: row.get(at)?,
        title: row.get(at + 1)?,
        summary: row.get(at + 2)?,
        content: row.get(at + 3)?,
        link: row.get(at + 4)?,
        published: from_secs(row.get(at + 5)?),
        source: row.get(at + 6)?,
    })
}

impl Store {
    /// Full-text search over every stored item's title and summary, best first. Words are
    /// matched stemmed and case-insensitively; all must occur. An empty query finds nothing.
    ///
    /// `filter` narrows the results as it narrows [`Store::list_matches`]: a verdict or review
    /// state keeps matched items only; a story keeps that story's matches and the items it did
    /// not match (which a reviewer may mark relevant to it); dates, limit and offset apply to
    /// all. An item matched in several stories gives one hit per story.
    pub fn search_items(&self, query: &str, filter: &MatchFilter) -> Result<Vec<SearchHit>> {
        let Some(fts) = fts_query(query) else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT i.id, i.title, {SHOWN_SUMMARY}, i.link, COALESCE(i.source, f.title), f.url,
                    i.published_at, i.first_seen_at, m.story, m.verdict, m.review
             FROM items_fts JOIN items i ON i.id = items_fts.rowid
                  JOIN feeds f ON f.id = i.feed_id
                  LEFT JOIN matches m ON m.item_id = i.id AND (?3 IS NULL OR m.story = ?3)
             WHERE items_fts MATCH ?1
               AND (?4 IS NULL OR m.verdict = ?4) AND (?5 IS NULL OR m.review = ?5)
               AND (?6 IS NULL OR COALESCE(i.published_at, i.first_seen_at) >= ?6)
               AND (?7 IS NULL OR COALESCE(i.published_at, i.first_seen_at) < ?7)
             ORDER BY bm25(items_fts), i.id DESC, m.story LIMIT ?2 OFFSET ?8",
        ))?;
        let rows = stmt.query_map(
            params![
                fts,
                filter.limit.map_or(-1, |l| l as i64),
                filter.story,
                filter.verdict.map(verdict_name),
                filter.review.map(Review::as_str),
                filter.since.map(to_secs),
                filter.until.map(to_secs),
                filter.offset.unwrap_or(0) as i64
            ],
            |row| {
                Ok((
                    SearchHit {
                        id: row.get(0)?,
                        title: row.get(1)?,
                        summary: row.get(2)?,
                        link: row.get(3)?,
                        source: row.get(4)?,
                        feed_url: row.get(5)?,
                        published_at: from_secs(row.get(6)?),
                        first_seen_at: from_secs(row.get(7)?).unwrap_or(Timestamp::UNIX_EPOCH),
                        story: row.get(8)?,
                        verdict: None,
                        review: None,
                    },
                    row.get::<_, Option<String>>(9)?,
                    row.get::<_, Option<String>>(10)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (mut hit, verdict, review) = row?;
            hit.verdict = verdict.as_deref().map(parse_verdict).transpose()?;
            hit.review = review.as_deref().map(Review::parse).transpose()?;
            out.push(hit);
        }
        Ok(out)
    }

    /// Marks any stored item relevant to `story`. An item the matcher passed over gets a match
    /// row made by the reviewer (verdict `related`, score 0, a why saying so) so it shows in the
    /// list and the next digest; an existing match is simply marked. False when no such item.
    pub fn mark_item_relevant(
        &mut self,
        item_id: i64,
        story: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM items WHERE id = ?1)",
            params![item_id],
            |row| row.get(0),
        )?;
        if !exists {
            return Ok(false);
        }
        let why = serde_json::to_string(&[REVIEWER_ADDED_WHY])
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        tx.execute(
            "INSERT INTO matches (item_id, story, verdict, score, baseline_id, why, matched_at,
                                  review, reviewed_at, origin)
             VALUES (?1, ?2, 'related', 0.0, NULL, ?3, ?4, 'relevant', ?4, 'reviewer')
             ON CONFLICT (item_id, story) DO UPDATE SET review = 'relevant', reviewed_at = ?4",
            params![item_id, story, why, to_secs(now)],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Every reviewed match of `story` with its item's full text, oldest mark first: the hook
    /// the profile update uses to learn from people's judgements (relevant matches confirm,
    /// irrelevant ones are false alarms, reviewer-added ones are misses).
    pub fn marked_items(&self, story: &str) -> Result<Vec<MarkedItem>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT i.id, m.review, m.origin, m.verdict, m.score, m.reviewed_at,
                    i.dedup_key, i.title, i.summary, i.content, i.link, i.published_at, i.source
             FROM matches m JOIN items i ON i.id = m.item_id
             WHERE m.story = ?1 AND m.review != 'unreviewed'
             ORDER BY m.reviewed_at, i.id",
        )?;
        let rows = stmt.query_map(params![story], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, f64>(4)?,
                row.get::<_, Option<i64>>(5)?,
                item_from_row(row, 6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, review, origin, verdict, score, reviewed_at, item) = row?;
            out.push(MarkedItem {
                id,
                item,
                review: Review::parse(&review)?,
                origin: MatchOrigin::parse(&origin)?,
                verdict: parse_verdict(&verdict)?,
                score,
                reviewed_at: from_secs(reviewed_at),
            });
        }
        Ok(out)
    }

    /// Re-runs `classify` over every stored item for `story` in one transaction, and commits
    /// only when `apply` is set (a dry run rolls back, so both paths run the same code).
    ///
    /// Review state is kept: still-matched items keep their review and digest; items that stop
    /// matching lose their match only when nobody reviewed it and no digest carried it; matches
    /// a reviewer added are left alone; newly matched items become unreviewed matches.
    pub fn rescore(
        &mut self,
        story: &str,
        mut classify: impl FnMut(&Item, Timestamp) -> Verdict,
        sign: impl Fn(&Item) -> Signature,
        apply: bool,
        now: Timestamp,
    ) -> Result<RescoreReport> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut report = RescoreReport::default();
        {
            let mut stmt = tx.prepare(
                "SELECT i.id, m.verdict, m.review, m.digest_id, m.origin,
                        i.dedup_key, i.title, i.summary, i.content, i.link, i.published_at, i.source,
                        i.first_seen_at
                 FROM items i LEFT JOIN matches m ON m.item_id = i.id AND m.story = ?1
                 ORDER BY i.id",
            )?;
            let rows = stmt
                .query_map(params![story], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, Option<i64>>(3)?,
                        row.get::<_, Option<String>>(4)?,
                        item_from_row(row, 5)?,
                        row.get::<_, i64>(12)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut insert = tx.prepare(
                "INSERT INTO matches (item_id, story, verdict, score, baseline_id, why, matched_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut update = tx.prepare(
                "UPDATE matches SET verdict = ?3, score = ?4, baseline_id = ?5, why = ?6
                 WHERE item_id = ?1 AND story = ?2",
            )?;
            let mut delete = tx.prepare("DELETE FROM matches WHERE item_id = ?1 AND story = ?2")?;
            for (id, verdict, review, digest_id, origin, item, seen) in rows {
                report.scanned += 1;
                let seen = from_secs(Some(seen)).unwrap_or(now);
                let new = classify(&item, seen);
                let before = verdict.as_deref().map(parse_verdict).transpose()?;
                let review = review.as_deref().map(Review::parse).transpose()?;
                let change = RescoreChange {
                    id,
                    title: item.title.clone(),
                    before,
                    after: new.verdict,
                    score: new.score,
                    review,
                };
                let why = serde_json::to_string(&new.why)
                    .map_err(|err| StoreError::Corrupt(err.to_string()))?;
                let origin = origin.as_deref().map(MatchOrigin::parse).transpose()?;
                match (before, new.verdict) {
                    (None, VerdictKind::OffTopic) => {}
                    (None, kind) => {
                        insert.execute(params![
                            id,
                            story,
                            verdict_name(kind),
                            new.score,
                            new.baseline,
                            why,
                            to_secs(now)
                        ])?;
                        // Newly matched: it joins its near-duplicates' group.
                        super::groups::assign_group(&tx, id, &item, &sign(&item), seen)?;
                        report.new_matches.push(change);
                    }
                    (Some(_), _) if origin == Some(MatchOrigin::Reviewer) => {}
                    (Some(_), VerdictKind::OffTopic) => {
                        if review == Some(Review::Unreviewed) && digest_id.is_none() {
                            delete.execute(params![id, story])?;
                            report.dropped.push(change);
                        } else {
                            report.kept.push(change);
                        }
                    }
                    (Some(old), kind) => {
                        update.execute(params![
                            id,
                            story,
                            verdict_name(kind),
                            new.score,
                            new.baseline,
                            why
                        ])?;
                        if old != kind {
                            report.changed.push(change);
                        }
                    }
                }
            }
        }
        if apply {
            tx.commit()?;
        }
        Ok(report)
    }

    /// How polling is keeping up, for readiness: the earliest due time and the latest attempt.
    /// Running it also proves the database answers.
    pub fn poll_lag(&self) -> Result<PollLag> {
        let (feeds, earliest, last): (i64, Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT COUNT(*), MIN(next_poll_at), MAX(last_attempt_at) FROM feeds WHERE active = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?;
        Ok(PollLag {
            feeds: feeds as usize,
            earliest_due: from_secs(earliest),
            last_attempt: from_secs(last),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FeedConfig;
    use crate::feeds::Validators;
    use crate::store::FetchedPoll;

    fn item(key: &str, title: &str) -> Item {
        Item {
            dedup_key: key.into(),
            title: title.into(),
            summary: String::new(),
            content: String::new(),
            link: None,
            published: None,
            source: None,
        }
    }

    fn store_with(items: &[(Item, Verdict)]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        store
            .sync_feeds(&[FeedConfig {
                url: "https://a.example/f".into(),
                interval: std::time::Duration::from_secs(1800),
                title: None,
            }])
            .unwrap();
        let feed_id = store.active_feeds().unwrap()[0].id;
        let now = Timestamp::now();
        store
            .record_fetched(&FetchedPoll {
                feed_id,
                story: "s",
                feed_title: None,
                validators: &Validators {
                    etag: None,
                    last_modified: None,
                },
                items,
                more_verdicts: &[],
                now,
                next_poll_at: now,
                background_before: None,
                interval: None,
                sign: &crate::store::unsigned,
            })
            .unwrap();
        (dir, store)
    }

    fn v(kind: VerdictKind) -> Verdict {
        Verdict {
            verdict: kind,
            score: 0.5,
            baseline: None,
            why: Vec::new(),
        }
    }

    #[test]
    fn fts_query_quotes_everything() {
        assert_eq!(
            fts_query("a AND b*").as_deref(),
            Some("\"a\" \"AND\" \"b\"*")
        );
        assert_eq!(
            fts_query("say \"hi\"").as_deref(),
            Some("\"say\" \"\"\"hi\"\"\"")
        );
        assert_eq!(fts_query("  * - ( "), None);
    }

    #[test]
    fn marked_items_feed_the_learning_hook_and_rescore_keeps_reviews() {
        let (_dir, mut store) = store_with(&[
            (item("1", "fentanyl talks"), v(VerdictKind::FollowUp)),
            (item("2", "weather"), v(VerdictKind::Related)),
            (item("3", "precursor seizure"), v(VerdictKind::OffTopic)),
            (item("4", "sports"), v(VerdictKind::Related)),
        ]);
        let now = Timestamp::now();
        store.mark(1, Review::Relevant, now).unwrap();
        store.mark(2, Review::Irrelevant, now).unwrap();
        assert!(store.mark_item_relevant(3, "s", now).unwrap());
        assert!(!store.mark_item_relevant(99, "s", now).unwrap());
        let marked = store.marked_items("s").unwrap();
        let summary: Vec<_> = marked.iter().map(|m| (m.id, m.review, m.origin)).collect();
        assert_eq!(
            summary,
            vec![
                (1, Review::Relevant, MatchOrigin::Matcher),
                (2, Review::Irrelevant, MatchOrigin::Matcher),
                (3, Review::Relevant, MatchOrigin::Reviewer),
            ]
        );
        assert_eq!(marked[2].item.title, "precursor seizure");

        // A profile that matches nothing: only the unreviewed matcher match (4) may go.
        let off = |_: &Item, _| v(VerdictKind::OffTopic);
        let dry = store
            .rescore("s", off, crate::store::unsigned, false, now)
            .unwrap();
        assert_eq!(
            dry.dropped.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec![4]
        );
        assert_eq!(
            dry.kept.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(
            store.list_matches(&MatchFilter::default()).unwrap().len(),
            4
        );
        store
            .rescore("s", off, crate::store::unsigned, true, now)
            .unwrap();
        let left: Vec<_> = store
            .list_matches(&MatchFilter::default())
            .unwrap()
            .iter()
            .map(|m| (m.id, m.review))
            .collect();
        assert_eq!(left.len(), 3);
        assert!(!left.iter().any(|(id, _)| *id == 4));
        // A profile that matches everything as follow-up: 4 comes back, reviews stay.
        let on = |_: &Item, _| v(VerdictKind::FollowUp);
        let report = store
            .rescore("s", on, crate::store::unsigned, true, now)
            .unwrap();
        assert_eq!(
            report.new_matches.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec![4]
        );
        assert_eq!(
            store.get_match(2).unwrap().unwrap().review,
            Review::Irrelevant
        );
        assert_eq!(
            store.get_match(2).unwrap().unwrap().verdict,
            VerdictKind::FollowUp
        );
    }
}
