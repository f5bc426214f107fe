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
        conn.execute(
            "UPDATE stream_documents SET documents = documents + ?1 WHERE id = 1",
            params![to_i64(self.documents)],
        )?;
        Ok(())
    }
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
