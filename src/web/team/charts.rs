//! Simple bar charts drawn on the server as SVG (no script): the geometry
//! is computed here, the template writes the elements with every label
//! escaped. Each chart also carries its numbers for a table beside it,
//! which is what a screen reader reads.

use crate::domain::reports::Snapshot;
use time::{Date, Duration, Month, OffsetDateTime, Time};

/// NHS colours for the series (blue, dark blue, aqua green, warm yellow, purple, grey).
const COLOURS: [&str; 6] = [
    "#005eb8", "#003087", "#00a499", "#ffb81c", "#330072", "#768692",
];

pub const WIDTH: f64 = 640.0;
pub const HEIGHT: f64 = 240.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 40.0;
const TOP: f64 = 10.0;

pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub colour: &'static str,
    pub title: String,
}

pub struct Label {
    pub x: f64,
    pub y: f64,
    pub text: String,
}

pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub description: String,
    pub rects: Vec<Rect>,
    pub x_labels: Vec<Label>,
    pub y_labels: Vec<Label>,
    pub legend: Vec<(String, &'static str)>,
    /// The numbers: a header row, then one row per bar.
    pub table: Vec<Vec<String>>,
    pub width: f64,
    pub height: f64,
    pub baseline: f64,
}

/// A stacked bar chart: `columns` of `(label, [(series, value)])`.
pub fn stacked(
    id: &'static str,
    title: &str,
    description: &str,
    series: &[String],
    columns: &[(String, Vec<usize>)],
) -> Chart {
    let max = columns
        .iter()
        .map(|(_, v)| v.iter().sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = (WIDTH - LEFT) / columns.len().max(1) as f64;
    let bar_w = slot * 0.6;
    let scale = plot_h / max as f64;
    let mut rects = vec![];
    let mut x_labels = vec![];
    for (i, (label, values)) in columns.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut y = HEIGHT - BOTTOM;
        for (j, v) in values.iter().enumerate() {
            if *v == 0 {
                continue;
            }
            let h = *v as f64 * scale;
            y -= h;
            rects.push(Rect {
                x,
                y,
                w: bar_w,
                h,
                colour: COLOURS[j % COLOURS.len()],
                title: format!(
                    "{label}: {v} {}",
                    series.get(j).map(String::as_str).unwrap_or("")
                ),
            });
        }
        x_labels.push(Label {
            x: x + bar_w / 2.0,
            y: HEIGHT - BOTTOM + 16.0,
            text: label.clone(),
        });
    }
    let y_labels = [0, max / 2, max]
        .iter()
        .map(|v| Label {
            x: LEFT - 6.0,
            y: HEIGHT - BOTTOM - *v as f64 * scale + 4.0,
            text: v.to_string(),
        })
        .collect();
    let mut table = vec![
        std::iter::once("Period".to_owned())
            .chain(series.iter().cloned())
            .collect(),
    ];
    for (label, values) in columns {
        table.push(
            std::iter::once(label.clone())
                .chain(values.iter().map(usize::to_string))
                .collect(),
        );
    }
    Chart {
        id,
        title: title.to_owned(),
        description: description.to_owned(),
        rects,
        x_labels,
        y_labels,
        legend: series
            .iter()
            .enumerate()
            .map(|(j, s)| (s.clone(), COLOURS[j % COLOURS.len()]))
            .collect(),
        table,
        width: WIDTH,
        height: HEIGHT,
        baseline: HEIGHT - BOTTOM,
    }
}

fn month_start(d: Date) -> Date {
    d.replace_day(1).unwrap_or(d)
}

fn months_back(d: Date, n: u32) -> Date {
    let mut m = month_start(d);
    for _ in 0..n {
        m = month_start(m - Duration::days(1));
    }
    m
}

fn next_month(d: Date) -> Date {
    month_start(d + Duration::days(32))
}

fn at(d: Date) -> OffsetDateTime {
    d.with_time(Time::MIDNIGHT).assume_utc()
}

fn month_label(d: Date) -> String {
    let m: Month = d.month();
    let name: String = m.to_string().chars().take(3).collect();
    format!("{name} {}", d.year() % 100)
}

/// Referrals received per month for the 12 months ending with `to`, by source.
pub fn referrals_by_source(s: &Snapshot, to: Date) -> Chart {
    let mut sources: Vec<String> = s.referrals.iter().map(|r| r.source_kind.clone()).collect();
    sources.sort();
    sources.dedup();
    let columns: Vec<(String, Vec<usize>)> = (0..12)
        .rev()
        .map(|k| {
            let from = months_back(to, k);
            let (a, b) = (at(from), at(next_month(from)));
            let counts = sources
                .iter()
                .map(|src| {
                    s.referrals
                        .iter()
                        .filter(|r| {
                            &r.source_kind == src && r.received_at >= a && r.received_at < b
                        })
                        .count()
                })
                .collect();
            (month_label(from), counts)
        })
        .collect();
    stacked(
        "referrals-chart",
        "Referrals received per month, by source",
        "Stacked bars: one bar per month for the last 12 months, one colour per referral source.",
        &sources,
        &columns,
    )
}

/// People on the waiting list at the end of each of the last 12 months.
pub fn waiting_over_time(s: &Snapshot, to: Date) -> Chart {
    let columns: Vec<(String, Vec<usize>)> = (0..12)
        .rev()
        .map(|k| {
            let from = months_back(to, k);
            let end = at(next_month(from)).min(at(to + Duration::days(1)));
            let n = s.referrals.iter().filter(|r| r.waiting_at(end)).count();
            (month_label(from), vec![n])
        })
        .collect();
    stacked(
        "waiting-chart",
        "Waiting list at the end of each month",
        "Bars: people accepted but not yet seen at each month's end (IPS target: 5 or fewer).",
        &["waiting".to_owned()],
        &columns,
    )
}

/// Job starts per quarter for the last 6 quarters ending with `to`'s.
pub fn job_starts_per_quarter(s: &Snapshot, to: Date) -> Chart {
    let q_of = |d: Date| (d.year(), (u8::from(d.month()) - 1) / 3 + 1);
    let (mut y, mut q) = q_of(to);
    let mut quarters = vec![];
    for _ in 0..6 {
        quarters.push((y, q));
        if q == 1 {
            y -= 1;
            q = 4;
        } else {
            q -= 1;
        }
    }
    quarters.reverse();
    let columns: Vec<(String, Vec<usize>)> = quarters
        .iter()
        .map(|(y, q)| {
            let n = s
                .jobs
                .iter()
                .filter(|j| q_of(j.started_on) == (*y, *q))
                .count();
            (format!("{y} Q{q}"), vec![n])
        })
        .collect();
    stacked(
        "jobs-chart",
        "Job starts per quarter",
        "Bars: job starts in each of the last 6 quarters, second and later jobs included.",
        &["job starts".to_owned()],
        &columns,
    )
}
