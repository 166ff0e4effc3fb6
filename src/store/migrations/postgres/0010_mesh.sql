-- Documents sent to GP practices over MESH (GP Connect Send Document), and
-- the patient's registered GP practice.

-- One row per document sent (or meant to be sent) over MESH. The send
-- itself is an outbox row (kind mesh-send) keyed by local_id.
CREATE TABLE document_deliveries (
    local_id          TEXT    PRIMARY KEY,      -- mex-LocalID
    document_id       TEXT    NOT NULL,
    case_id           TEXT    NOT NULL,
    itk_message_id    TEXT    NOT NULL UNIQUE,  -- the ITK3 MessageHeader id acks quote
    recipient_ods     TEXT,
    mailbox           TEXT,
    state             TEXT    NOT NULL,         -- sent | delivered | accepted | rejected | unacknowledged | unroutable
    delivered_before  BOOLEAN NOT NULL DEFAULT FALSE,
    ack_level         TEXT,
    ack_code          TEXT,
    ack_text          TEXT,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);
CREATE INDEX document_deliveries_case ON document_deliveries (case_id);

-- The patient's registered GP practice as the latest referral named it
-- (Patient.generalPractitioner): where a document for the practice goes.
CREATE TABLE case_practices (
    case_id     TEXT    PRIMARY KEY,
    gp_ods      TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- The rendered document, kept only when it went to no FHIR server (MESH
-- alone): the practice holds its copy, and the team's pages show this one.
CREATE TABLE document_contents (
    document_id TEXT    PRIMARY KEY,
    xhtml       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
