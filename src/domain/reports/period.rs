//! A reporting period: whole days, both ends included, in UTC.

use serde::Serialize;
use time::{Date, Duration, Month, OffsetDateTime, Time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: Date,
    /// The last day included.
    pub to: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("{0:?} is not a quarter: write it as YYYYQn, e.g. 2026Q3")]
    Quarter(String),
    #[error("{0:?} is not a month: write it as YYYY-MM, e.g. 2026-10")]
    Month(String),
    #[error("{0:?} is not a date: write it as YYYY-MM-DD")]
    Date(String),
    #[error("the period ends ({to}) before it starts ({from})")]
    Backwards { from: Date, to: Date },
}

impl Period {
    pub fn new(from: Date, to: Date) -> Result<Period, PeriodError> {
        if to < from {
            return Err(PeriodError::Backwards { from, to });
        }
        Ok(Period { from, to })
    }

    /// `from`/`to` as `YYYY-MM-DD`; by default the 12 months up to `today`.
    pub fn of_dates(
        from: Option<&str>,
        to: Option<&str>,
        today: Date,
    ) -> Result<Period, PeriodError> {
        let to = to.map(Period::date).transpose()?.unwrap_or(today);
        let from = from
            .map(Period::date)
            .transpose()?
            .unwrap_or(to - Duration::days(364));
        Period::new(from, to)
    }

    /// `2026Q3` → 1 July to 30 September 2026.
    pub fn quarter(s: &str) -> Result<Period, PeriodError> {
        let bad = || PeriodError::Quarter(s.to_owned());
        let (y, q) = s.split_once(['Q', 'q']).ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        let q: u8 = q.parse().map_err(|_| bad())?;
        if !(1..=4).contains(&q) || !(1900..=9999).contains(&year) {
            return Err(bad());
        }
        let first = Month::try_from(3 * (q - 1) + 1).map_err(|_| bad())?;
        let from = Date::from_calendar_date(year, first, 1).map_err(|_| bad())?;
        let next = if q == 4 {
            Date::from_calendar_date(year + 1, Month::January, 1)
        } else {
            Date::from_calendar_date(year, Month::try_from(3 * q + 1).map_err(|_| bad())?, 1)
        }
        .map_err(|_| bad())?;
        Ok(Period {
            from,
            to: next - Duration::days(1),
        })
    }

    /// `2026-10` → the whole of October 2026.
    pub fn month(s: &str) -> Result<Period, PeriodError> {
        let bad = || PeriodError::Month(s.to_owned());
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if m.len() != 2 {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u8 = m.parse().map_err(|_| bad())?;
        let month = Month::try_from(month).map_err(|_| bad())?;
        let from = Date::from_calendar_date(year, month, 1).map_err(|_| bad())?;
        let to = Date::from_calendar_date(year, month, month.length(year)).map_err(|_| bad())?;
        Ok(Period { from, to })
    }

    pub fn date(s: &str) -> Result<Date, PeriodError> {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        Date::parse(s, fmt).map_err(|_| PeriodError::Date(s.to_owned()))
    }

    /// The first instant of the period.
    pub fn start(&self) -> OffsetDateTime {
        self.from.with_time(Time::MIDNIGHT).assume_utc()
    }

    /// The first instant after the period.
    pub fn end(&self) -> OffsetDateTime {
        (self.to + Duration::days(1))
            .with_time(Time::MIDNIGHT)
            .assume_utc()
    }

    pub fn contains(&self, t: OffsetDateTime) -> bool {
        t >= self.start() && t < self.end()
    }

    pub fn contains_date(&self, d: Date) -> bool {
        d >= self.from && d <= self.to
    }

    /// The quarter's name (`2026Q3`) when the period is exactly one.
    pub fn label(&self) -> String {
        format!("{} to {}", self.from, self.to)
    }
}
