//! Where the engine gets the time. The domain takes time as a parameter;
//! this is the one place it is read, so tests can set it.

use std::path::PathBuf;
use time::OffsetDateTime;

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock a test can set from outside the process: the file holds an RFC
/// 3339 instant, read at every call. Configured with `clock.file`, meant for
/// tests that stop and restart the daemon around a deadline (a timer must
/// fire at its time, however the process was killed). Until the file holds
/// a valid instant, system time.
pub struct FileClock {
    path: PathBuf,
}

impl FileClock {
    pub fn new(path: PathBuf) -> Self {
        FileClock { path }
    }
}

impl Clock for FileClock {
    fn now(&self) -> OffsetDateTime {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| {
                OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()
            })
            .unwrap_or_else(OffsetDateTime::now_utc)
    }
}

/// "Now" as configured (`clock.file`, else the system clock), for commands
/// outside the running engine such as `report`.
pub fn now(settings: &crate::config::ClockSettings) -> OffsetDateTime {
    match &settings.file {
        Some(p) => FileClock::new(p.clone()).now(),
        None => SystemClock.now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_clock_reads_the_instant_its_file_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("now");
        let clock = FileClock::new(path.clone());
        let before = OffsetDateTime::now_utc();
        assert!(clock.now() >= before, "no file: system time");
        std::fs::write(&path, "2030-01-02T03:04:05Z\n").unwrap();
        assert_eq!(clock.now().year(), 2030);
        std::fs::write(&path, "2031-06-01T00:00:00+01:00").unwrap();
        assert_eq!(clock.now().year(), 2031);
    }
}
