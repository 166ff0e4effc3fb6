-- Dead letters: every message the consumer rejects, kept here as well as in the
-- broker's dead-letter queue. `ips-bridge dlq list|show` read this table, so
-- looking at dead letters never touches the broker (on RabbitMQ 4.x every
-- requeue of a quorum-queue message counts towards a delivery limit, after
-- which the message is dropped). One row per (queue, message id, body): a
-- redelivered rejected message updates its row; a different body under the
-- same message id is a different dead letter.
CREATE TABLE dead_letters (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    source_queue TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,          -- the consumer's dedupe key
    body_sha256  TEXT    NOT NULL,          -- hex
    error_code   TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    exchange     TEXT    NOT NULL,          -- where the message was first published
    routing_key  TEXT    NOT NULL,
    properties   TEXT    NOT NULL,          -- AMQP basic properties as JSON (lossless)
    body         BLOB    NOT NULL,
    rejected_at  BIGINT  NOT NULL,          -- the latest rejection
    rejections   BIGINT  NOT NULL,          -- how often it was rejected (guards a replay's mark)
    replayed_at  BIGINT,                    -- NULL: waiting for a replay
    replay_count BIGINT  NOT NULL,
    UNIQUE (source_queue, message_id, body_sha256)
);
CREATE INDEX dead_letters_waiting ON dead_letters (error_code, id) WHERE replayed_at IS NULL;
