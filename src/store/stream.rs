//! Stream statistics: how many of the items the daemon has seen contain each term, so that term
//! weights follow the news this user's feeds actually carry (see [`crate::story::background`]).
//!
//! Only items that no story matched are counted: the background is "news that is not this
//! story". Counting matches too would make the story's own words look common in a stream
//! chosen for the story, and each day's matches would weigh down the next day's.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::{Result, Store};

/// Document frequencies gathered from one poll, written in the poll's transaction.
#[derive(Debug, Default)]
pub(crate) struct StreamCounts {
    /// Term → number of counted items containing it.
    terms: HashMap<String, u64>,
    /// Number of counted items.
    documents: u64,
}

impl StreamCounts {
    /// Counts one item given its distinct terms.
    pub(crate) fn add<'a>(&mut self, distinct_terms: impl IntoIterator<Item = &'a String>) {
        for term in distinct_terms {
            *self.terms.entry(term.clone()).or_default() += 1;
        }
        self.documents += 1;
    }

    /// Adds the counts to the stored statistics (inside the caller's transaction).
    pub(crate) fn write(&self, conn: &Connection) -> Result<()> {
        if self.documents == 0 {
            return Ok(());
        }
        let mut upsert = conn.prepare_cached(
            "INSERT INTO term_stats (term, documents) VALUES (?1, ?2)
             ON CONFLICT(term) DO UPDATE SET documents = documents + excluded.documents",
        )?;
        for (term, n) in &self.terms {
            upsert.execute(params![term, to_i64(*n)])?;
        }
        let total: i64 = conn.query_row(
            "UPDATE stream_documents SET documents = documents + ?1 WHERE id = 1
             RETURNING documents",
            params![to_i64(self.documents)],
            |row| row.get(0),
        )?;
        let total = u64::try_from(total).unwrap_or(0);
        let before = total.saturating_sub(self.documents);
        if total / PRUNE_EVERY_DOCUMENTS != before / PRUNE_EVERY_DOCUMENTS {
            prune_terms(conn, MAX_STREAM_TERMS)?;
        }
        Ok(())
    }
}

/// Most terms the stream statistics keep. A year of a thousand feeds brings hundreds of
/// thousands of one-off words (names, typos, numbers); the table, and the memory of a
/// reweighing that reads it whole, stay bounded by dropping the rarest.
const MAX_STREAM_TERMS: u64 = 150_000;

/// How often, in counted items, the term count is checked against [`MAX_STREAM_TERMS`].
const PRUNE_EVERY_DOCUMENTS: u64 = 2_000;

/// Drops the rarest terms until at most `max` are left: first those seen in one item, then
/// two, and so on. A dropped term reads as unseen in the stream, which for a word seen once or
/// twice in thousands of items is nearly what its count said; the shipped background still
/// knows it.
fn prune_terms(conn: &Connection, max: u64) -> Result<()> {
    let count = |conn: &Connection| -> Result<u64> {
        let n: i64 = conn.query_row("SELECT count(*) FROM term_stats", [], |row| row.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    let mut rarer_than: i64 = 2;
    while count(conn)? > max {
        let dropped = conn.execute(
            "DELETE FROM term_stats WHERE documents < ?1",
            params![rarer_than],
        )?;
        tracing::debug!(dropped, rarer_than, "pruned rare stream terms");
        rarer_than = rarer_than.saturating_mul(2);
    }
    Ok(())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The stored stream statistics, as [`crate::story::Background::merge`] takes them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamStats {
    /// Number of counted items.
    pub documents: u64,
    /// Each term with the number of counted items containing it.
    pub terms: Vec<(String, u64)>,
}

impl Store {
    /// How many items the stream statistics count (one cheap query, to tell whether they are
    /// worth reloading).
    pub fn stream_documents(&self) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT documents FROM stream_documents WHERE id = 1",
            [],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Every term's count over the counted items.
    pub fn stream_stats(&self) -> Result<StreamStats> {
        let documents = self.stream_documents()?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT term, documents FROM term_stats")?;
        let terms = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(StreamStats { documents, terms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE term_stats (term TEXT PRIMARY KEY, documents INTEGER NOT NULL);",
        )
        .unwrap();
        conn
    }

    fn insert(conn: &Connection, term: &str, documents: i64) {
        conn.execute(
            "INSERT INTO term_stats (term, documents) VALUES (?1, ?2)",
            params![term, documents],
        )
        .unwrap();
    }

    fn terms(conn: &Connection) -> Vec<(String, i64)> {
        let mut stmt = conn
            .prepare("SELECT term, documents FROM term_stats ORDER BY term")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn pruning_drops_the_rarest_terms_first_and_keeps_counts() {
        let conn = table();
        for (i, n) in [1, 1, 1, 2, 2, 3, 5, 40].into_iter().enumerate() {
            insert(&conn, &format!("t{i}"), n);
        }
        prune_terms(&conn, 8).unwrap();
        assert_eq!(terms(&conn).len(), 8, "under the cap: nothing dropped");
        prune_terms(&conn, 5).unwrap();
        assert_eq!(
            terms(&conn),
            [("t3", 2), ("t4", 2), ("t5", 3), ("t6", 5), ("t7", 40)]
                .map(|(t, n)| (t.to_string(), n))
        );
        prune_terms(&conn, 2).unwrap();
        assert_eq!(
            terms(&conn),
            [("t6", 5), ("t7", 40)].map(|(t, n)| (t.to_string(), n))
        );
    }
}
