-- Referral intake: patients, cases, referrals, appointments.
CREATE TABLE patients (
    id         TEXT    PRIMARY KEY,
    nhs_hash   TEXT    NOT NULL UNIQUE,  -- lookup key; never logged
    nhs_number TEXT    NOT NULL,         -- needed to write identifiers to the record
    created_at INTEGER NOT NULL
);

CREATE TABLE cases (
    id             TEXT    PRIMARY KEY,
    patient_id     TEXT    NOT NULL REFERENCES patients (id),
    status         TEXT    NOT NULL,     -- open, closed
    opened_at      INTEGER NOT NULL,
    closed_at      INTEGER,
    closed_reason  TEXT,
    referral_count INTEGER NOT NULL
);
CREATE UNIQUE INDEX cases_one_open ON cases (patient_id) WHERE status = 'open';

CREATE TABLE referrals (
    id                      TEXT    PRIMARY KEY,
    referral_key            TEXT    NOT NULL UNIQUE,
    case_id                 TEXT    REFERENCES cases (id),
    resource_ref            TEXT,
    channel                 TEXT    NOT NULL,
    state                   TEXT    NOT NULL,
    fhir_status             TEXT    NOT NULL,
    incomplete_reasons      TEXT    NOT NULL,  -- JSON array of strings
    content_hash            TEXT    NOT NULL,
    source_updated_at       INTEGER,
    authored_at             INTEGER,
    received_at             INTEGER NOT NULL,
    completed_at            INTEGER,
    source_ods              TEXT,
    source_kind             TEXT    NOT NULL,
    is_multiple             INTEGER NOT NULL,
    decision                TEXT,
    decline_reason          TEXT,
    decided_at              INTEGER,
    decided_by              TEXT,
    assistance_commenced_at INTEGER,
    updated_at              INTEGER NOT NULL,
    raw                     TEXT    NOT NULL
);
CREATE INDEX referrals_case ON referrals (case_id);
CREATE INDEX referrals_state ON referrals (state);

CREATE TABLE appointments (
    id                TEXT    PRIMARY KEY,
    appointment_key   TEXT    NOT NULL UNIQUE,
    case_id           TEXT    REFERENCES cases (id),
    status            TEXT    NOT NULL,
    start_at          INTEGER,
    content_hash      TEXT    NOT NULL,
    source_updated_at INTEGER,
    updated_at        INTEGER NOT NULL,
    raw               TEXT    NOT NULL
);
CREATE INDEX appointments_case ON appointments (case_id);
