//! The one table: figure | ips-bridge | baseline | ratio | goal | met?
//!
//! A goal is either a ratio to the baseline (throughput) or an absolute
//! bound (latency, memory). A figure that could not be measured shows its
//! error and makes the run fail; a slow figure only shows "no".

use std::fmt::Write as _;

pub enum Goal {
    /// ips-bridge / baseline must be at least this.
    RatioAtLeast(f64),
    /// ips-bridge must be below this, in the figure's unit.
    Below(f64),
    /// Reported for reference only.
    Reference,
    /// No goal for this figure.
    None,
}

pub struct Row {
    figure: String,
    bridge: String,
    baseline: String,
    ratio: String,
    goal: String,
    met: String,
}

impl Row {
    /// A measured row: `bridge` and `baseline` in the same unit, formatted with `fmt`.
    pub fn measured(
        figure: impl Into<String>,
        bridge: f64,
        baseline: Option<f64>,
        goal: Goal,
        fmt: fn(f64) -> String,
    ) -> Row {
        let ratio = baseline.filter(|b| *b > 0.0).map(|b| bridge / b);
        let (goal_text, met) = match goal {
            Goal::RatioAtLeast(r) => (format!("≥ {r}×"), ratio.map(|x| x >= r)),
            Goal::Below(limit) => (format!("< {}", fmt(limit)), Some(bridge < limit)),
            Goal::Reference => ("reference only".into(), None),
            Goal::None => ("–".into(), None),
        };
        Row {
            figure: figure.into(),
            bridge: fmt(bridge),
            baseline: baseline.map(fmt).unwrap_or_else(|| "n/a".into()),
            ratio: ratio
                .map(|r| format!("{r:.2}×"))
                .unwrap_or_else(|| "n/a".into()),
            goal: goal_text,
            met: match met {
                Some(true) => "yes".into(),
                Some(false) => "**no**".into(),
                None => "–".into(),
            },
        }
    }

    /// The bridge figure shown with a prefix (e.g. `≥` for a lower bound).
    pub fn qualified(mut self, prefix: &str) -> Row {
        if !prefix.is_empty() {
            self.bridge = format!("{prefix} {}", self.bridge);
        }
        self
    }

    pub fn error(figure: impl Into<String>, e: &anyhow::Error) -> Row {
        let text = format!("{e:#}").replace('\n', " ").replace('|', "/");
        let short: String = text.chars().take(300).collect();
        Row {
            figure: figure.into(),
            bridge: format!("error: {short}"),
            baseline: "–".into(),
            ratio: "–".into(),
            goal: "–".into(),
            met: "ERROR".into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.met == "ERROR"
    }
}

pub fn per_sec(v: f64) -> String {
    format!("{v:.0}/s")
}

pub fn millis(v: f64) -> String {
    format!("{v:.1} ms")
}

/// Megabytes (10^6 bytes), the unit of the memory goal.
pub fn mb(v: f64) -> String {
    format!("{v:.1} MB")
}

/// The report: title, machine and commit, the table, then how it was measured.
pub fn render(title: &str, context: &[String], rows: &[Row], notes: &[String]) -> String {
    let mut out = format!("# {title}\n\n");
    for c in context {
        let _ = writeln!(out, "- {c}");
    }
    out.push('\n');
    out.push_str("| figure | ips-bridge | baseline | ratio | goal | met? |\n");
    out.push_str("|---|---:|---:|---:|---|---|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.figure, r.bridge, r.baseline, r.ratio, r.goal, r.met
        );
    }
    if !notes.is_empty() {
        out.push_str("\nHow each figure is measured:\n\n");
        for n in notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_goals_and_absolute_goals() {
        let r = Row::measured("x", 90.0, Some(100.0), Goal::RatioAtLeast(0.8), per_sec);
        assert_eq!((r.ratio.as_str(), r.met.as_str()), ("0.90×", "yes"));
        let r = Row::measured("y", 1200.0, None, Goal::Below(1000.0), millis);
        assert_eq!((r.ratio.as_str(), r.met.as_str()), ("n/a", "**no**"));
    }
}
