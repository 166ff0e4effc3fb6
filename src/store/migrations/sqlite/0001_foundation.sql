-- Foundation: inbox (dedupe), outbox, timers, poll cursors, audit.
-- Times are milliseconds since the Unix epoch (UTC) in both back-ends.
CREATE TABLE inbox (
    source       TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,
    processed_at INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    PRIMARY KEY (source, message_id)
);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,          -- 'fhir' or 'event'
    dedupe_key      TEXT    NOT NULL UNIQUE,   -- one row per intended write
    ordering_key    TEXT    NOT NULL,          -- rows with one key are delivered in id order
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL,          -- pending, done, failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_until   INTEGER,
    last_error      TEXT,
    result          TEXT,
    created_at      INTEGER NOT NULL,
    done_at         INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
CREATE INDEX outbox_order ON outbox (ordering_key, status, id);

CREATE TABLE timers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    due_at     INTEGER NOT NULL,
    payload    TEXT    NOT NULL,
    fired_at   INTEGER,
    UNIQUE (kind, subject)
);
CREATE INDEX timers_due ON timers (fired_at, due_at);

CREATE TABLE poll_cursors (
    source     TEXT    PRIMARY KEY,
    cursor     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE audit (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    actor         TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    resource_type TEXT    NOT NULL,
    resource_id   TEXT    NOT NULL,
    detail        TEXT
);
