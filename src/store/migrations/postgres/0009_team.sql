-- The team's window (issue 15): employment outcomes, who holds each case, and
-- the staff roster. No foreign keys to cases, as for outreach (0007): a unit
-- of work buffers the cases it creates until commit.

-- One row per job a person started, as the specialist recorded it. A job
-- end fills `ended_on`; a job is never deleted (IPS Grow counts job starts).
CREATE TABLE job_starts (
    id             TEXT    PRIMARY KEY,
    job_key        TEXT    NOT NULL UNIQUE, -- case id + the sender's job id: repeats are one job
    case_id        TEXT    NOT NULL,
    employer       TEXT    NOT NULL,
    started_on     TEXT    NOT NULL,        -- YYYY-MM-DD
    hours_band     TEXT    NOT NULL,        -- NHS Data Dictionary WEEKLY HOURS WORKED: 01 | 02 | 03 | 04 | 97
    hours_per_week DOUBLE PRECISION,                  -- exact hours when known
    paid           BIGINT  NOT NULL,        -- 1 paid, 0 unpaid
    recorded_by    TEXT    NOT NULL,
    ended_on       TEXT,
    end_reason     TEXT,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);
CREATE INDEX job_starts_case ON job_starts (case_id, started_on);

-- Employment status as recorded (MHSDS MHS004EmpStatus), newest by start date.
CREATE TABLE employment_statuses (
    id            TEXT    PRIMARY KEY,
    status_key    TEXT    NOT NULL UNIQUE,
    case_id       TEXT    NOT NULL,
    status        TEXT    NOT NULL,         -- NHS Data Dictionary EMPLOYMENT STATUS: 01..08 | ZZ
    recorded_on   TEXT    NOT NULL,         -- EmployStatusRecDate
    started_on    TEXT,                     -- EmployStatusStartDate
    hours_band    TEXT,                     -- WeekHoursWorked (employed only)
    recorded_by   TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX employment_statuses_case ON employment_statuses (case_id, recorded_on);

-- Which specialist holds a case (one at a time; history is in the audit).
CREATE TABLE case_assignments (
    case_id     TEXT    PRIMARY KEY,
    specialist  TEXT    NOT NULL,           -- the staff member's subject (OIDC `sub` or a configured id)
    assigned_by TEXT    NOT NULL,
    assigned_at BIGINT  NOT NULL
);
CREATE INDEX case_assignments_specialist ON case_assignments (specialist);

-- Everyone who has signed in, with the roles they had then.
CREATE TABLE staff (
    sub          TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    roles        TEXT    NOT NULL,          -- comma-separated role codes
    last_seen_at BIGINT  NOT NULL
);
