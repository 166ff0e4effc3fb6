//! The events the bridge publishes on `ips-bridge.events`, one routing key each.
//!
//! Bodies carry ids and codes, never patient data (README, "Events").

/// A routing key on the events exchange. The code is the published contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
pub enum EventType {
    #[strum(serialize = "referral.received")]
    ReferralReceived,
    #[strum(serialize = "referral.accepted")]
    ReferralAccepted,
    #[strum(serialize = "referral.declined")]
    ReferralDeclined,
    /// Cancelled (`revoked`) or voided (`entered-in-error`) by the referrer.
    #[strum(serialize = "referral.withdrawn")]
    ReferralWithdrawn,
    /// The referrer closed the referral because of missed appointments (BaRS
    /// DNA feedback). Not a withdrawal: assertive outreach applies.
    #[strum(serialize = "referral.closed-after-dna")]
    ReferralClosedAfterDna,
    /// An accepted referral reached the waiting-list target without
    /// assistance having commenced.
    #[strum(serialize = "referral.wait-exceeded")]
    ReferralWaitExceeded,
    /// A case came within warning of a discharge rule: Flag and Task written.
    #[strum(serialize = "outreach.flagged")]
    OutreachFlagged,
    /// Attendance, contact or a decision resolved the outreach episode.
    #[strum(serialize = "outreach.resolved")]
    OutreachResolved,
    /// A source system closed a referral because of DNAs (a fidelity
    /// breach); the IPS case stays open.
    #[strum(serialize = "outreach.closed-by-rule")]
    OutreachClosedByRule,
    /// A VP, IWSP or note was written to the record (review Task with it).
    #[strum(serialize = "document.published")]
    DocumentPublished,
    /// A comment on a published document came back.
    #[strum(serialize = "document.commented")]
    DocumentCommented,
    /// A review was chased (one event per chase).
    #[strum(serialize = "document.overdue")]
    DocumentOverdue,
    /// A document sent over MESH was acknowledged by the practice's system
    /// (the first positive ITK acknowledgement; once per document).
    #[strum(serialize = "document.delivered")]
    DocumentDelivered,
    /// A negative ITK acknowledgement or a MESH non-delivery report, or the
    /// document could not be routed (no practice or mailbox known).
    #[strum(serialize = "document.rejected")]
    DocumentRejected,
    /// No business acknowledgement within `mesh.ack_within`.
    #[strum(serialize = "document.unacknowledged")]
    DocumentUnacknowledged,
    /// A person started a job (IPS Grow counts every start).
    #[strum(serialize = "job.started")]
    JobStarted,
    /// A job ended.
    #[strum(serialize = "job.ended")]
    JobEnded,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}
