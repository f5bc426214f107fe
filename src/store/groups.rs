//! Near-duplicate groups of stored items: syndicated copies and wire rewrites of one report.
//!
//! A group is named by its earliest item (by published time, else first seen): every member's
//! `group_id` is that item's id, so "one entry per group, earliest first" is one comparison.
//! Groups are assigned when a matched item is stored ([`assign_group`], inside the poll's
//! transaction), by comparing its [`Signature`] with the signed items first seen within
//! [`GROUP_WINDOW_DAYS`]; unmatched items are not grouped (nobody sees them in a digest).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Result, Store, from_secs, to_secs};
use crate::item::Item;
use crate::story::neardup::{GROUP_WINDOW_DAYS, Prepared, Signature};

/// One member of a near-duplicate group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupMember {
    /// The item's id.
    pub id: i64,
    /// Headline.
    pub title: String,
    /// Outlet (the item's source, else its feed's title).
    pub source: Option<String>,
    /// The feed's URL.
    pub feed_url: String,
    /// Link, http(s) only.
    pub link: Option<String>,
    /// Published time, else first seen.
    pub time: Timestamp,
}

/// Seconds in the grouping window.
const WINDOW_SECS: i64 = GROUP_WINDOW_DAYS * 86_400;

/// Stored signatures read back and prepared, by their stored form. Each new match is compared
/// with every signed item of the window, so without this a poll bringing many matches at once
/// (a first poll of many feeds) parsed and weighed the same stored signatures over and over.
/// Keyed by content, so a re-signed item (rescore) simply misses.
static PREPARED: LazyLock<Mutex<HashMap<String, Arc<Prepared>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Most prepared signatures kept; past it the cache starts over (a window of matches is far
/// smaller than this in any real feed list).
const PREPARED_MAX: usize = 50_000;

/// The prepared form of a stored signature, from the cache when it was seen before.
fn prepared(stored: &str) -> Arc<Prepared> {
    // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
    let mut cache = PREPARED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(p) = cache.get(stored) {
        return Arc::clone(p);
    }
    if cache.len() >= PREPARED_MAX {
        cache.clear();
    }
    let p = Arc::new(Prepared::new(Signature::from_stored(stored)));
    cache.insert(stored.to_string(), Arc::clone(&p));
    p
}

/// Stores `item`'s signature and puts it in the group of its most alike item first seen
/// within the window around `seen` (when it was first seen), or in a group of its own. When it
/// is earlier than the group's current earliest item it becomes the group's name. An item
/// already grouped keeps its group. Returns the group id.
pub(crate) fn assign_group(
    conn: &Connection,
    item_id: i64,
    item: &Item,
    signature: &Signature,
    seen: Timestamp,
) -> Result<i64> {
    let existing: Option<Option<i64>> = conn
        .query_row(
            "SELECT group_id FROM items WHERE id = ?1 AND signature IS NOT NULL",
            params![item_id],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(group) = existing {
        return Ok(group.unwrap_or(item_id));
    }
    let time = to_secs(item.published.unwrap_or(seen));
    let mine = Prepared::new(signature.clone());
    let mut best: Option<(f64, i64)> = None;
    {
        let mut stmt = conn.prepare_cached(
            "SELECT signature, COALESCE(published_at, first_seen_at), COALESCE(group_id, id)
             FROM items
             WHERE signature IS NOT NULL AND first_seen_at BETWEEN ?1 AND ?2 AND id != ?3",
        )?;
        let seen = to_secs(seen);
        let window = params![seen - WINDOW_SECS, seen + WINDOW_SECS, item_id];
        let rows = stmt.query_map(window, |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (stored, other_time, group) = row?;
            if (other_time - time).abs() > WINDOW_SECS {
                continue;
            }
            let likeness = mine.likeness(&prepared(&stored));
            if likeness >= 1.0 && best.is_none_or(|(b, _)| likeness > b) {
                best = Some((likeness, group));
            }
        }
    }
    let group = match best {
        None => item_id,
        Some((_, group)) => {
            let earliest: i64 = conn.query_row(
                "SELECT COALESCE(published_at, first_seen_at) FROM items WHERE id = ?1",
                params![group],
                |row| row.get(0),
            )?;
            if time < earliest {
                // The new item is the earliest report: the group takes its name.
                conn.execute(
                    "UPDATE items SET group_id = ?1 WHERE group_id = ?2 OR id = ?2",
                    params![item_id, group],
                )?;
                item_id
            } else {
                group
            }
        }
    };
    conn.execute(
        "UPDATE items SET signature = ?2, group_id = ?3 WHERE id = ?1",
        params![item_id, signature.to_stored(), group],
    )?;
    Ok(group)
}

impl Store {
    /// The near-duplicate group of an item, earliest first (just the item when it has no
    /// group); empty when there is no such item.
    pub fn group_of(&self, item_id: i64) -> Result<Vec<GroupMember>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT i.id, i.title, COALESCE(i.source, f.title), f.url, i.link,
                    COALESCE(i.published_at, i.first_seen_at)
             FROM items i JOIN feeds f ON f.id = i.feed_id
             WHERE i.id = ?1
                OR (i.group_id IS NOT NULL
                    AND i.group_id = (SELECT group_id FROM items WHERE id = ?1))
             ORDER BY COALESCE(i.published_at, i.first_seen_at), i.id",
        )?;
        let rows = stmt.query_map(params![item_id], |row| {
            Ok(GroupMember {
                id: row.get(0)?,
                title: row.get(1)?,
                source: row.get(2)?,
                feed_url: row.get(3)?,
                link: row.get(4)?,
                time: from_secs(Some(row.get(5)?)).unwrap_or(Timestamp::UNIX_EPOCH),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FeedConfig;
    use crate::store::{FetchedPoll, MatchFilter};
    use crate::story::{Verdict, VerdictKind};

    fn item(key: &str, title: &str, summary: &str, published: &str, source: &str) -> Item {
        Item {
            dedup_key: key.into(),
            title: title.into(),
            summary: summary.into(),
            content: String::new(),
            link: Some(format!("https://{source}.example/{key}")),
            published: Some(published.parse().unwrap()),
            source: Some(source.into()),
        }
    }

    fn verdict(kind: VerdictKind) -> Verdict {
        Verdict {
            verdict: kind,
            score: 0.8,
            baseline: None,
            why: Vec::new(),
        }
    }

    fn poll(store: &mut Store, feed: usize, items: Vec<(Item, VerdictKind)>, now: &str) {
        let feed_id = store.active_feeds().unwrap()[feed].id;
        let now: Timestamp = now.parse().unwrap();
        let items: Vec<(Item, Verdict)> = items.into_iter().map(|(i, k)| (i, verdict(k))).collect();
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
    }

    const AP: (&str, &str) = (
        "US and China agree to curb fentanyl precursor exports",
        "Officials in Beijing said controls on precursor chemicals would take effect in May.",
    );
    const REUTERS: (&str, &str) = (
        "China, US agree to curb exports of fentanyl precursors",
        "Controls on the chemicals take effect in May, officials said in Beijing.",
    );
    const OTHER: (&str, &str) = (
        "US charges Chinese firms over fentanyl precursor sales",
        "Prosecutors in New York unsealed indictments against two companies.",
    );

    #[test]
    fn rewrites_across_feeds_share_the_earliest_items_group() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let feeds: Vec<FeedConfig> = ["https://a.example/f", "https://b.example/f"]
            .iter()
            .map(|u| FeedConfig {
                url: (*u).into(),
                interval: std::time::Duration::from_secs(1800),
                title: None,
            })
            .collect();
        store.sync_feeds(&feeds).unwrap();
        use VerdictKind::*;
        // Reuters (feed b) is stored first but published later than AP (feed a).
        poll(
            &mut store,
            1,
            vec![
                (
                    item(
                        "r1",
                        REUTERS.0,
                        REUTERS.1,
                        "2025-05-02T10:00:00Z",
                        "Reuters",
                    ),
                    FollowUp,
                ),
                (
                    item("r2", OTHER.0, OTHER.1, "2025-05-02T11:00:00Z", "Reuters"),
                    FollowUp,
                ),
                (
                    item("r3", AP.0, AP.1, "2025-05-02T11:00:00Z", "Reuters"),
                    OffTopic,
                ),
            ],
            "2025-05-02T12:00:00Z",
        );
        poll(
            &mut store,
            0,
            vec![(
                item("a1", AP.0, AP.1, "2025-05-02T08:00:00Z", "AP"),
                FollowUp,
            )],
            "2025-05-02T13:00:00Z",
        );
        // The same words ten days later: a new development, not a copy.
        poll(
            &mut store,
            0,
            vec![(
                item("a2", REUTERS.0, REUTERS.1, "2025-05-12T08:00:00Z", "AP"),
                FollowUp,
            )],
            "2025-05-12T12:00:00Z",
        );
        let rows = store.list_matches(&MatchFilter::default()).unwrap();
        let by_id = |id: i64| rows.iter().find(|m| m.id == id).unwrap();
        // Ids: r1 = 1, r2 = 2, r3 = 3 (off topic, not grouped), a1 = 4, a2 = 5.
        assert_eq!(
            by_id(1).group_id,
            Some(4),
            "AP's earlier report names the group"
        );
        assert_eq!(by_id(4).group_id, Some(4));
        assert_eq!(by_id(2).group_id, Some(2));
        assert_eq!(by_id(5).group_id, Some(5), "outside the window");
        assert_eq!(by_id(4).also_reported_by, vec!["Reuters"]);
        assert_eq!(by_id(1).also_reported_by, vec!["AP"]);
        assert!(by_id(2).also_reported_by.is_empty());
        let group: Vec<(i64, Option<String>)> = store
            .group_of(1)
            .unwrap()
            .into_iter()
            .map(|m| (m.id, m.source))
            .collect();
        assert_eq!(
            group,
            vec![(4, Some("AP".into())), (1, Some("Reuters".into()))]
        );
        assert_eq!(store.group_of(3).unwrap().len(), 1, "ungrouped: itself");
        assert!(store.group_of(99).unwrap().is_empty());

        // A rescore that newly matches Reuters' copy of AP (3) puts it in AP's group.
        let now: Timestamp = "2025-05-13T12:00:00Z".parse().unwrap();
        let report = store
            .rescore(
                "s",
                |_, _| verdict(FollowUp),
                crate::store::unsigned,
                true,
                now,
            )
            .unwrap();
        assert_eq!(report.new_matches.len(), 1);
        let ids: Vec<i64> = store.group_of(4).unwrap().iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![4, 1, 3]);
    }
}
