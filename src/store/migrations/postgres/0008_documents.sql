-- IPS documents in the single client chart (VP, IWSP, contact notes) and
-- their review by the GP or care coordinator.
--
-- No foreign keys to cases, for the reason given in 0007.

-- A VP or IWSP being gathered over sessions: one per case and kind, kept
-- after completion so a revision builds on it.
CREATE TABLE document_drafts (
    case_id    TEXT   NOT NULL,
    kind       TEXT   NOT NULL,      -- vp | iwsp
    draft      TEXT   NOT NULL,      -- domain::documents::Draft as JSON
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (case_id, kind)
);

-- Every version published to the record (a Binary and a DocumentReference),
-- and for the VP and IWSP its review.
CREATE TABLE documents (
    id            TEXT    PRIMARY KEY,   -- also the DocumentReference's business identifier value
    case_id       TEXT    NOT NULL,
    kind          TEXT    NOT NULL,      -- vp | iwsp | note
    version       INTEGER NOT NULL,
    source_key    TEXT    NOT NULL UNIQUE, -- what made it (completion or the sender's note id): a repeat makes no second document
    title         TEXT    NOT NULL,
    author        TEXT    NOT NULL,
    status        TEXT    NOT NULL,      -- current | superseded
    replaces_id   TEXT,
    content_sha1  TEXT    NOT NULL,      -- base64, as attachment.hash
    size          BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL,
    review_status TEXT,                  -- awaiting | commented | replaced; NULL for notes
    review_due_at BIGINT,
    chases        INTEGER NOT NULL DEFAULT 0,
    reviewed_at   BIGINT,
    updated_at    BIGINT  NOT NULL,
    UNIQUE (case_id, kind, version)
);
CREATE INDEX documents_case ON documents (case_id, created_at);
CREATE INDEX documents_awaiting ON documents (review_status, review_due_at);

-- Comments on a document: the review Task completed with output or a note, or
-- a Communication about the DocumentReference.
CREATE TABLE document_comments (
    id           TEXT   PRIMARY KEY,
    document_id  TEXT   NOT NULL,
    case_id      TEXT   NOT NULL,
    comment_key  TEXT   NOT NULL UNIQUE, -- source resource and its version: a re-read adds nothing
    source       TEXT   NOT NULL,        -- review-task | communication
    author       TEXT,
    text         TEXT   NOT NULL,
    commented_at BIGINT NOT NULL,
    received_at  BIGINT NOT NULL
);
CREATE INDEX document_comments_document ON document_comments (document_id, commented_at);
