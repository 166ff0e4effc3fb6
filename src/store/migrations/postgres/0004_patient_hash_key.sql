-- Patient lookup hashes become keyed (HMAC-SHA256 with store.patient_key) instead
-- of a plain SHA-256, which 10-digit NHS numbers let anyone reverse. This one row
-- names the scheme and key that every patients.nhs_hash was made with;
-- 'sha256-v1' is the old unkeyed hash. At start-up, when it differs from the
-- configured key's fingerprint, the bridge re-hashes every patient from the stored
-- NHS number and updates this row in the same transaction, so a crash midway
-- leaves the old hashes and the old fingerprint, and the next start does it again.
CREATE TABLE patient_hash_key (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint TEXT    NOT NULL,
    rehashed_at BIGINT
);
INSERT INTO patient_hash_key (id, fingerprint, rehashed_at) VALUES (1, 'sha256-v1', NULL);
