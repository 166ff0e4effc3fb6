-- Assertive outreach (IPS fidelity item 25).
--
-- No foreign keys to cases: a unit of work buffers the cases it creates until
-- commit, while these rows are written as the handler goes; the engine only
-- ever writes them for a case it has just read or created.

-- What the discharge rules need to know of each appointment of a case: one
-- row per appointment (by its business key), replaced by a later version.
CREATE TABLE appointment_facts (
    appointment_key TEXT   PRIMARY KEY,
    case_id         TEXT   NOT NULL,
    fact            TEXT   NOT NULL,   -- domain::outreach::AppointmentFact as JSON
    updated_at      INTEGER NOT NULL
);
CREATE INDEX appointment_facts_case ON appointment_facts (case_id);

-- One row per outreach episode: from the moment a case came within warning of
-- a discharge rule (Flag + Task written) until attendance, contact or a
-- clinician's decision resolved it.
CREATE TABLE outreach_episodes (
    id          TEXT   PRIMARY KEY,
    case_id     TEXT   NOT NULL,
    rule_id     TEXT   NOT NULL,
    status      TEXT   NOT NULL,      -- active | resolved
    opened_at   INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,      -- the specialist's Task is due by then
    risk        TEXT   NOT NULL,      -- domain::outreach::ClosureRisk as JSON, at opening
    trigger_key TEXT   NOT NULL,      -- what raised it; the same trigger never raises a second episode
    resolved_at INTEGER,
    resolution  TEXT,                 -- attended | contacted | clinician-decision | case-closed | no-longer-at-risk
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX outreach_episodes_one_active ON outreach_episodes (case_id) WHERE status = 'active';
CREATE INDEX outreach_episodes_case ON outreach_episodes (case_id, opened_at);

-- Every outreach attempt, as the specialist recorded it.
CREATE TABLE outreach_attempts (
    id           TEXT   PRIMARY KEY,
    attempt_key  TEXT   NOT NULL UNIQUE, -- the sender's id for it (or the message id): repeats are one attempt
    case_id      TEXT   NOT NULL,
    episode_id   TEXT,
    method       TEXT   NOT NULL,
    outcome      TEXT   NOT NULL,
    attempted_at INTEGER NOT NULL,
    specialist   TEXT   NOT NULL,
    note         TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX outreach_attempts_case ON outreach_attempts (case_id, attempted_at);

-- A source system closed a referral because of missed appointments although
-- IPS does not: the fidelity breach the service must see. The case stays open.
CREATE TABLE closures_by_rule (
    id          TEXT   PRIMARY KEY,
    case_id     TEXT   NOT NULL,
    referral_id TEXT   NOT NULL,
    cause       TEXT   NOT NULL,      -- bars-dna-feedback | referral-revoked-after-dna | referral-completed-after-dna
    closed_at   INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    UNIQUE (referral_id, cause)
);
CREATE INDEX closures_by_rule_case ON closures_by_rule (case_id);
