//! Employment outcomes in the NHS Data Dictionary's codes (DESIGN §4.5).
//!
//! The codes are what MHSDS and the IPS Grow return expect, so they are
//! enums here and strings only at the edges: an unknown code is refused at
//! input with the list of valid ones, never stored.

use serde::{Deserialize, Serialize};

/// NHS Data Dictionary WEEKLY HOURS WORKED (MHSDS `WeekHoursWorked`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
pub enum HoursBand {
    /// 30 hours or more.
    #[serde(rename = "01")]
    #[strum(serialize = "01")]
    ThirtyPlus,
    /// 16 to 29 hours.
    #[serde(rename = "02")]
    #[strum(serialize = "02")]
    SixteenToTwentyNine,
    /// 5 to 15 hours.
    #[serde(rename = "03")]
    #[strum(serialize = "03")]
    FiveToFifteen,
    /// 1 to 4 hours.
    #[serde(rename = "04")]
    #[strum(serialize = "04")]
    OneToFour,
    /// Not stated.
    #[serde(rename = "97")]
    #[strum(serialize = "97")]
    NotStated,
}

impl HoursBand {
    pub fn code(self) -> &'static str {
        self.into()
    }

    pub fn label(self) -> &'static str {
        match self {
            HoursBand::ThirtyPlus => "30 hours or more",
            HoursBand::SixteenToTwentyNine => "16 to 29 hours",
            HoursBand::FiveToFifteen => "5 to 15 hours",
            HoursBand::OneToFour => "1 to 4 hours",
            HoursBand::NotStated => "Not stated",
        }
    }

    /// The band exact hours fall in (`None`: not a number of hours worked).
    pub fn of_hours(h: f64) -> Option<HoursBand> {
        if !h.is_finite() || h <= 0.0 || h > 168.0 {
            return None;
        }
        Some(if h >= 30.0 {
            HoursBand::ThirtyPlus
        } else if h >= 16.0 {
            HoursBand::SixteenToTwentyNine
        } else if h >= 5.0 {
            HoursBand::FiveToFifteen
        } else {
            HoursBand::OneToFour
        })
    }

    pub const CODES: &'static str = "01 (30+), 02 (16-29), 03 (5-15), 04 (1-4), 97 (not stated)";
}

/// NHS Data Dictionary EMPLOYMENT STATUS (MHSDS `EmployStatus`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
pub enum EmploymentStatus {
    #[serde(rename = "01")]
    #[strum(serialize = "01")]
    Employed,
    #[serde(rename = "02")]
    #[strum(serialize = "02")]
    UnemployedSeekingWork,
    #[serde(rename = "03")]
    #[strum(serialize = "03")]
    Student,
    #[serde(rename = "04")]
    #[strum(serialize = "04")]
    LongTermSick,
    #[serde(rename = "05")]
    #[strum(serialize = "05")]
    Homemaker,
    #[serde(rename = "06")]
    #[strum(serialize = "06")]
    NotSeekingWork,
    #[serde(rename = "07")]
    #[strum(serialize = "07")]
    UnpaidVoluntaryWork,
    #[serde(rename = "08")]
    #[strum(serialize = "08")]
    Retired,
    #[serde(rename = "ZZ")]
    #[strum(serialize = "ZZ")]
    NotStated,
}

impl EmploymentStatus {
    pub fn code(self) -> &'static str {
        self.into()
    }

    pub fn label(self) -> &'static str {
        match self {
            EmploymentStatus::Employed => "Employed",
            EmploymentStatus::UnemployedSeekingWork => "Unemployed and actively seeking work",
            EmploymentStatus::Student => "Student not seeking work",
            EmploymentStatus::LongTermSick => "Long-term sick or disabled",
            EmploymentStatus::Homemaker => "Homemaker looking after family or home",
            EmploymentStatus::NotSeekingWork => {
                "Not receiving benefits and not actively seeking work"
            }
            EmploymentStatus::UnpaidVoluntaryWork => "Unpaid voluntary work",
            EmploymentStatus::Retired => "Retired",
            EmploymentStatus::NotStated => "Not stated",
        }
    }

    /// Known and not employed: who the IPS Grow employment rate counts.
    pub fn out_of_work(self) -> bool {
        !matches!(
            self,
            EmploymentStatus::Employed | EmploymentStatus::NotStated
        )
    }

    pub const CODES: &'static str = "01-08 or ZZ";
}

/// IPS Grow's "supported into work": a paid job of at least 4 hours a week.
/// Exact hours decide when known; otherwise only bands that start at 5 hours
/// qualify (band 04, 1 to 4 hours, cannot show 4 hours, and 97 says nothing).
pub fn qualifies_as_supported_into_work(paid: bool, band: HoursBand, hours: Option<f64>) -> bool {
    if !paid {
        return false;
    }
    match hours {
        Some(h) => h >= 4.0,
        None => matches!(
            band,
            HoursBand::ThirtyPlus | HoursBand::SixteenToTwentyNine | HoursBand::FiveToFifteen
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_fail() {
        use strum::IntoEnumIterator;
        for b in HoursBand::iter() {
            assert_eq!(b.code().parse::<HoursBand>().ok(), Some(b));
        }
        for s in EmploymentStatus::iter() {
            assert_eq!(s.code().parse::<EmploymentStatus>().ok(), Some(s));
        }
        assert!("05".parse::<HoursBand>().is_err());
        assert!("09".parse::<EmploymentStatus>().is_err());
        assert!("zz".parse::<EmploymentStatus>().is_err());
    }

    #[test]
    fn hours_fall_in_their_band() {
        assert_eq!(HoursBand::of_hours(37.5), Some(HoursBand::ThirtyPlus));
        assert_eq!(
            HoursBand::of_hours(16.0),
            Some(HoursBand::SixteenToTwentyNine)
        );
        assert_eq!(HoursBand::of_hours(15.9), Some(HoursBand::FiveToFifteen));
        assert_eq!(HoursBand::of_hours(4.0), Some(HoursBand::OneToFour));
        assert_eq!(HoursBand::of_hours(0.0), None);
        assert_eq!(HoursBand::of_hours(200.0), None);
    }

    #[test]
    fn supported_into_work_needs_four_paid_hours() {
        assert!(qualifies_as_supported_into_work(
            true,
            HoursBand::OneToFour,
            Some(4.0)
        ));
        assert!(!qualifies_as_supported_into_work(
            true,
            HoursBand::OneToFour,
            Some(3.5)
        ));
        assert!(!qualifies_as_supported_into_work(
            true,
            HoursBand::OneToFour,
            None
        ));
        assert!(!qualifies_as_supported_into_work(
            true,
            HoursBand::NotStated,
            None
        ));
        assert!(qualifies_as_supported_into_work(
            true,
            HoursBand::FiveToFifteen,
            None
        ));
        assert!(!qualifies_as_supported_into_work(
            false,
            HoursBand::ThirtyPlus,
            Some(40.0)
        ));
    }
}
