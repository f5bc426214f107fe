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
    // ---- web review (issue 6) ---------------------------------------------------------------
    // Kept as one self-contained entry so it can be renumbered against other branches' additions.
    // Full-text search over every stored item (matched or not), kept in sync by triggers and
    // backfilled by 'rebuild'; and `origin` tells matches the matcher made from those a reviewer
    // added by marking a search result relevant (so undo can remove them again and the profile
    // update can treat them as missed follow-ups).
    r#"
CREATE VIRTUAL TABLE items_fts USING fts5(
    title, summary,
    content = 'items', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER items_fts_after_insert AFTER INSERT ON items BEGIN
    INSERT INTO items_fts (rowid, title, summary) VALUES (new.id, new.title, new.summary);
END;
CREATE TRIGGER items_fts_after_delete AFTER DELETE ON items BEGIN
    INSERT INTO items_fts (items_fts, rowid, title, summary)
    VALUES ('delete', old.id, old.title, old.summary);
END;
CREATE TRIGGER items_fts_after_update AFTER UPDATE OF title, summary ON items BEGIN
    INSERT INTO items_fts (items_fts, rowid, title, summary)
    VALUES ('delete', old.id, old.title, old.summary);
    INSERT INTO items_fts (rowid, title, summary) VALUES (new.id, new.title, new.summary);
END;
INSERT INTO items_fts (items_fts) VALUES ('rebuild');

ALTER TABLE matches ADD COLUMN origin TEXT NOT NULL DEFAULT 'matcher'
    CHECK (origin IN ('matcher', 'reviewer'));
"#,
    // 3: digests keep their structured model (for HTML, JSON and chat renderings at delivery
    // time), failed deliveries wait for `next_attempt_at` before the next try, and a delivery
    // being made is claimed (`claimed_until`) so two processes never send it at once.
    r#"
ALTER TABLE digests ADD COLUMN model TEXT;
ALTER TABLE deliveries ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN last_attempt_at INTEGER;
ALTER TABLE deliveries ADD COLUMN claimed_until INTEGER;
"#,
    // 4: fetch scheduling (issue 4).
    // `config_url` is the URL as the config lists it: the feed's identity, which `sync_feeds`
    // matches on. `url` stays the URL polled, which a permanent redirect may change.
    // `config_fingerprint` (interval and title) tells when a config entry changed, which lifts
    // `disabled_reason`. `interval_secs` is the last adaptive interval. `background` marks items
    // stored from a first poll's backlog: kept and searchable, never a new match.
    r#"
ALTER TABLE feeds ADD COLUMN config_url TEXT;
UPDATE feeds SET config_url = url;
CREATE UNIQUE INDEX feeds_config_url ON feeds(config_url);
ALTER TABLE feeds ADD COLUMN config_fingerprint TEXT;
ALTER TABLE feeds ADD COLUMN disabled_reason TEXT;
ALTER TABLE feeds ADD COLUMN disabled_at INTEGER;
ALTER TABLE feeds ADD COLUMN interval_secs INTEGER;
ALTER TABLE items ADD COLUMN background INTEGER NOT NULL DEFAULT 0;
"#,
    // ---- near-duplicate groups (learn7) ------------------------------------------------------
    // Self-contained, so it can be renumbered against other branches' additions. A matched
    // item keeps its near-duplicate signature (analysed headline and summary terms) and the id
    // of its group's earliest item; NULL for items stored before, or never matched.
    r#"
ALTER TABLE items ADD COLUMN signature TEXT;
ALTER TABLE items ADD COLUMN group_id INTEGER;
CREATE INDEX items_group ON items(group_id) WHERE group_id IS NOT NULL;
CREATE INDEX items_signed ON items(first_seen_at) WHERE signature IS NOT NULL;
"#,
    // ---- stream background statistics (issue 3) ------------------------------------------------
    // Self-contained. Document frequencies of analysed terms over the items no story matched:
    // the background the story centroid's idf is measured against (see story::background).
    // `stream_documents` is the one-row count of those items.
    r#"
CREATE TABLE term_stats (
    term      TEXT PRIMARY KEY,
    documents INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE stream_documents (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    documents INTEGER NOT NULL
);
INSERT INTO stream_documents (id, documents) VALUES (1, 0);
"#,
    // ---- digest bookkeeping (issue 5) ---------------------------------------------------------
    // Self-contained. `claimed_by` is the process id holding a delivery's claim, so a starting
    // daemon frees only the claims of processes that are gone, never a live `digest --now`'s.
    // `generation` counts `digest resend`s of a delivery: a resend is a new message, with its
    // own idempotency key and Message-ID. `digest_schedule` keeps when the last digest was due
    // and decided (built, or skipped as empty), so a skipped day still counts as served.
    r#"
ALTER TABLE deliveries ADD COLUMN claimed_by INTEGER;
ALTER TABLE deliveries ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
CREATE TABLE digest_schedule (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_run INTEGER NOT NULL
);
"#,
    // ---- near-duplicate window scan (scale) ---------------------------------------------------
    // Self-contained. Grouping compares each new match with every signed item of its window;
    // an index holding what that scan reads lets it read the index alone, not one table page
    // per item (a first poll bringing thousands of matches did that millions of times).
    r#"
CREATE INDEX items_signed_window
    ON items(first_seen_at, published_at, group_id, signature) WHERE signature IS NOT NULL;
DROP INDEX items_signed;
"#,
];
