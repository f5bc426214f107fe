//! The cheap question the daemon asks before each poll: have the marks of a story changed
//! since the profile last learned from them? (Learning itself reads
//! [`Store::marked_items`](super::Store::marked_items).)

use rusqlite::params;

use super::{Result, Store};

/// A fingerprint of a story's marks: equal fingerprints mean the same marks (which items,
/// which way), so the learned adjustment need not be recomputed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MarksSignature {
    /// Marked matches.
    pub count: i64,
    /// Sum of item ids, counted positive when relevant and negative when irrelevant.
    pub signed_ids: i64,
    /// Latest mark time (Unix seconds).
    pub latest: i64,
}

impl Store {
    /// The fingerprint of `story`'s marks (one indexed aggregate query).
    pub fn marks_signature(&self, story: &str) -> Result<MarksSignature> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT COUNT(*),
                    COALESCE(SUM(CASE review WHEN 'relevant' THEN item_id ELSE -item_id END), 0),
                    COALESCE(MAX(reviewed_at), 0)
             FROM matches WHERE story = ?1 AND review != 'unreviewed'",
        )?;
        Ok(stmt.query_row(params![story], |row| {
            Ok(MarksSignature {
                count: row.get(0)?,
                signed_ids: row.get(1)?,
                latest: row.get(2)?,
            })
        })?)
    }
}
