//! Versioned schema migrations, applied in order inside one transaction at open.
//!
//! The schema version lives in SQLite's `user_version`. A migration is never edited once
//! released; changes come as a new entry at the end of [`MIGRATIONS`].

/// The migrations, oldest first; `MIGRATIONS[n]` takes the schema from version n to n + 1.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE feeds (
    id                   INTEGER PRIMARY KEY,
    url                  TEXT NOT NULL UNIQUE,
    title                TEXT,
    active               INTEGER NOT NULL DEFAULT 1,
    etag                 TEXT,
    last_modified        TEXT,
    last_attempt_at      INTEGER,
    last_success_at      INTEGER,
    last_error           TEXT,
    last_error_kind      TEXT,
    last_error_at        INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    next_poll_at         INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE items (
    id            INTEGER PRIMARY KEY,
    feed_id       INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    dedup_key     TEXT NOT NULL,
    title         TEXT NOT NULL,
    summary       TEXT NOT NULL,
    content       TEXT NOT NULL,
    link          TEXT,
    source        TEXT,
    published_at  INTEGER,
    first_seen_at INTEGER NOT NULL,
    UNIQUE (feed_id, dedup_key)
);
CREATE INDEX items_first_seen ON items(first_seen_at);

CREATE TABLE digests (
    id            INTEGER PRIMARY KEY,
    created_at    INTEGER NOT NULL,
    period_start  INTEGER,
    period_end    INTEGER NOT NULL,
    match_count   INTEGER NOT NULL,
    markdown      TEXT NOT NULL
);

CREATE TABLE matches (
    item_id     INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    story       TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('follow_up', 're_report', 'related')),
    score       REAL NOT NULL,
    baseline_id TEXT,
    why         TEXT NOT NULL,
    matched_at  INTEGER NOT NULL,
    review      TEXT NOT NULL DEFAULT 'unreviewed'
                CHECK (review IN ('unreviewed', 'relevant', 'irrelevant')),
    reviewed_at INTEGER,
    digest_id   INTEGER REFERENCES digests(id),
    PRIMARY KEY (item_id, story)
);
CREATE INDEX matches_undigested ON matches(story) WHERE digest_id IS NULL;

CREATE TABLE deliveries (
    digest_id    INTEGER NOT NULL REFERENCES digests(id),
    channel      TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    delivered_at INTEGER,
    PRIMARY KEY (digest_id, channel)
);
"#,
    // 2: digests keep their structured model (for HTML, JSON and chat renderings at delivery
    // time), failed deliveries wait for `next_attempt_at` before the next try, and a delivery
    // being made is claimed (`claimed_until`) so two processes never send it at once.
    r#"
ALTER TABLE digests ADD COLUMN model TEXT;
ALTER TABLE deliveries ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN last_attempt_at INTEGER;
ALTER TABLE deliveries ADD COLUMN claimed_until INTEGER;
"#,
];
