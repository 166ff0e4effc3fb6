//! How a published document reaches its reader, and what came back.
//!
//! Most GP systems take no FHIR writes: a document reaches a practice as a
//! GP Connect Send Document message over MESH, and the practice's system
//! answers with ITK3 acknowledgements (an infrastructure ack when the
//! message landed, a business ack when the practice's workflow took it).
//! [`route_for`] says which way a document goes; [`Delivery::apply`] says
//! what an acknowledgement, a MESH non-delivery report or a missed deadline
//! does to a delivery. No I/O, no clock.

use super::DocumentKind;
use serde::{Deserialize, Serialize};

/// Which way a document goes to the record.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Route {
    /// A Binary and a DocumentReference on the FHIR server (trust EPRs,
    /// shared care records), with a review Task.
    Fhir,
    /// GP Connect Send Document over MESH to the patient's practice.
    Mesh,
    /// Both of the above.
    Both,
}

impl Route {
    pub fn writes_fhir(self) -> bool {
        matches!(self, Route::Fhir | Route::Both)
    }
    pub fn sends_mesh(self) -> bool {
        matches!(self, Route::Mesh | Route::Both)
    }
}

/// One routing rule: a kind and a practice (either may be left open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// `vp`, `iwsp` or `note`; any kind when absent.
    #[serde(default)]
    pub kind: Option<DocumentKind>,
    /// The patient's GP practice (ODS code); any practice when absent.
    #[serde(default)]
    pub practice: Option<String>,
    pub route: Route,
}

impl RouteRule {
    fn matches(&self, kind: DocumentKind, practice: Option<&str>) -> bool {
        self.kind.is_none_or(|k| k == kind)
            && match (&self.practice, practice) {
                (None, _) => true,
                (Some(want), Some(have)) => want.eq_ignore_ascii_case(have),
                (Some(_), None) => false,
            }
    }
}

/// The first rule that matches, else the default. Rules are read in order,
/// so a practice-specific rule goes before a catch-all for its kind.
pub fn route_for(
    rules: &[RouteRule],
    default: Route,
    kind: DocumentKind,
    practice: Option<&str>,
) -> Route {
    rules
        .iter()
        .find(|r| r.matches(kind, practice))
        .map_or(default, |r| r.route)
}

/// Where a MESH delivery is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
    strum::EnumIter,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum DeliveryState {
    /// Handed to the outbox; no acknowledgement yet.
    Sent,
    /// The practice system's infrastructure acknowledgement: it landed.
    Delivered,
    /// The business acknowledgement: the practice's workflow took it.
    Accepted,
    /// A negative acknowledgement, or MESH could not deliver it.
    Rejected,
    /// No acknowledgement arrived by the deadline (a late one still counts).
    Unacknowledged,
    /// Never sent: the patient's practice is not known, or has no mailbox
    /// in `mesh.mailboxes`.
    Unroutable,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// No acknowledgement can change it any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Accepted | DeliveryState::Rejected | DeliveryState::Unroutable
        )
    }
}

/// Which ITK3 acknowledgement.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::Display,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum AckLevel {
    Infrastructure,
    Business,
    /// A MESH non-delivery report: the message never reached the mailbox's owner.
    MeshReport,
}

/// What came back about a sent message: the code and text as the sender gave them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub level: AckLevel,
    pub positive: bool,
    /// The ITK response code (e.g. `10001`, `30001`) or the MESH error code.
    pub code: Option<String>,
    /// The display or description that came with the code (a code's meaning,
    /// never patient data: the parser takes it from the coding, not from
    /// free-text diagnostics).
    pub text: Option<String>,
}

/// What a delivery becomes, and what the team should hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub to: DeliveryState,
    pub announce: Option<Announcement>,
    /// The acknowledgement deadline no longer matters.
    pub settled: bool,
}

/// The event a transition publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// `document.delivered`: the first positive acknowledgement.
    Delivered,
    /// `document.rejected`.
    Rejected,
    /// `document.unacknowledged`: the deadline passed in silence.
    Unacknowledged,
}

/// A delivery's state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub state: DeliveryState,
    /// A positive acknowledgement was seen before (and `document.delivered`
    /// published): the state alone cannot say so once it went on to
    /// `unacknowledged`.
    pub delivered_before: bool,
}

impl Delivery {
    /// What `ack` does; `None` when it changes nothing (a repeat, or news
    /// about a delivery already accepted or rejected).
    pub fn apply(self, ack: &Ack) -> Option<Transition> {
        if self.state.is_final() {
            return None;
        }
        if !ack.positive {
            return Some(Transition {
                to: DeliveryState::Rejected,
                announce: Some(Announcement::Rejected),
                settled: true,
            });
        }
        let announce = (!self.delivered_before).then_some(Announcement::Delivered);
        match ack.level {
            AckLevel::Business => Some(Transition {
                to: DeliveryState::Accepted,
                announce,
                settled: true,
            }),
            // A positive report or infrastructure ack: it landed.
            AckLevel::Infrastructure | AckLevel::MeshReport => {
                if self.delivered_before {
                    return None;
                }
                Some(Transition {
                    to: DeliveryState::Delivered,
                    announce,
                    settled: false,
                })
            }
        }
    }

    /// The acknowledgement deadline passed. Only a delivery still waiting
    /// for its business acknowledgement is overdue.
    pub fn deadline_passed(self) -> Option<Transition> {
        match self.state {
            DeliveryState::Sent | DeliveryState::Delivered => Some(Transition {
                to: DeliveryState::Unacknowledged,
                announce: Some(Announcement::Unacknowledged),
                settled: true,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(state: DeliveryState, delivered_before: bool) -> Delivery {
        Delivery {
            state,
            delivered_before,
        }
    }

    fn ack(level: AckLevel, positive: bool) -> Ack {
        Ack {
            level,
            positive,
            code: None,
            text: None,
        }
    }

    #[test]
    fn first_matching_rule_wins_and_practice_codes_ignore_case() {
        let rules = vec![
            RouteRule {
                kind: Some(DocumentKind::Vp),
                practice: Some("A81001".into()),
                route: Route::Both,
            },
            RouteRule {
                kind: None,
                practice: Some("a81001".into()),
                route: Route::Mesh,
            },
        ];
        let r = |k, p| route_for(&rules, Route::Fhir, k, p);
        assert_eq!(r(DocumentKind::Vp, Some("a81001")), Route::Both);
        assert_eq!(r(DocumentKind::Note, Some("A81001")), Route::Mesh);
        assert_eq!(r(DocumentKind::Vp, Some("B82002")), Route::Fhir);
        assert_eq!(r(DocumentKind::Vp, None), Route::Fhir);
    }

    #[test]
    fn business_ack_accepts_and_announces_delivery_once() {
        let sent = at(DeliveryState::Sent, false);
        let t = sent.apply(&ack(AckLevel::Infrastructure, true)).unwrap();
        assert_eq!(t.to, DeliveryState::Delivered);
        assert_eq!(t.announce, Some(Announcement::Delivered));
        let delivered = at(t.to, true);
        assert_eq!(delivered.apply(&ack(AckLevel::Infrastructure, true)), None);
        let t = delivered.apply(&ack(AckLevel::Business, true)).unwrap();
        assert_eq!((t.to, t.announce), (DeliveryState::Accepted, None));
        let accepted = at(t.to, true);
        assert_eq!(accepted.apply(&ack(AckLevel::Business, false)), None);
        // A business ack alone also announces the delivery.
        let t = sent.apply(&ack(AckLevel::Business, true)).unwrap();
        assert_eq!(t.announce, Some(Announcement::Delivered));
    }

    #[test]
    fn a_negative_ack_or_report_rejects_unless_already_final() {
        for level in [
            AckLevel::Infrastructure,
            AckLevel::Business,
            AckLevel::MeshReport,
        ] {
            for state in [
                DeliveryState::Sent,
                DeliveryState::Delivered,
                DeliveryState::Unacknowledged,
            ] {
                let t = at(state, false).apply(&ack(level, false)).unwrap();
                assert_eq!(t.to, DeliveryState::Rejected);
                assert_eq!(t.announce, Some(Announcement::Rejected));
            }
        }
        let rejected = at(DeliveryState::Rejected, false);
        assert_eq!(rejected.apply(&ack(AckLevel::Business, true)), None);
    }

    #[test]
    fn the_deadline_marks_only_unsettled_deliveries_and_a_late_ack_still_counts() {
        let t = at(DeliveryState::Sent, false).deadline_passed().unwrap();
        assert_eq!(t.to, DeliveryState::Unacknowledged);
        let late = at(t.to, false)
            .apply(&ack(AckLevel::Business, true))
            .unwrap();
        assert_eq!(late.to, DeliveryState::Accepted);
        assert_eq!(late.announce, Some(Announcement::Delivered));
        // Delivered, then silent past the deadline, then accepted: announced once.
        let t = at(DeliveryState::Delivered, true)
            .deadline_passed()
            .unwrap();
        let late = at(t.to, true)
            .apply(&ack(AckLevel::Business, true))
            .unwrap();
        assert_eq!((late.to, late.announce), (DeliveryState::Accepted, None));
        assert_eq!(at(DeliveryState::Accepted, true).deadline_passed(), None);
    }
}
