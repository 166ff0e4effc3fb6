//! The employment specialist's documents as a reader gets them: one
//! self-contained, well-formed XHTML file (some EPRs accept only XHTML) with
//! the patient's details, the author, the service, the version and a
//! plain-language heading per section.
//!
//! Built with an askama template, which escapes every value (`&`, `<`, `>`,
//! quotes) into numeric character references, valid in XML as in HTML.
//! Characters XML 1.0 forbids (control characters other than tab, newline
//! and carriage return) are replaced with U+FFFD before templating: escaping
//! cannot make them legal, and one would make the whole file unreadable to
//! an XML parser. No CSS, font, script or image is fetched from elsewhere.
//! There is no DOCTYPE: it is a DTD declaration to an XML reader, and many
//! refuse any DTD by default (.NET's does), which would reject the document.

mod sample;

pub use sample::render_sample;

use askama::Template;
use time::{Date, OffsetDateTime};

/// One section as the reader sees it.
pub struct SectionView<'a> {
    /// Plain-language heading, e.g. "What work you want".
    pub heading: &'a str,
    /// Free text as typed: newlines, markup and any script kept as text.
    pub text: &'a str,
    /// The session it was gathered at.
    pub recorded_on: Option<Date>,
}

/// Everything a rendered document shows.
pub struct DocumentView<'a> {
    pub title: &'a str,
    pub patient_name: Option<&'a str>,
    /// Ten digits; shown as 3-3-4 groups.
    pub nhs_number: &'a str,
    pub date_of_birth: Option<Date>,
    pub author_name: &'a str,
    pub author_role: &'a str,
    pub service_name: &'a str,
    pub organisation_ods: Option<&'a str>,
    pub created: OffsetDateTime,
    pub session_dates: &'a [Date],
    /// 1, 2, ...; "Version 2 (replaces version 1)" when above 1.
    pub version: u32,
    pub status_line: Option<&'a str>,
    pub sections: Vec<SectionView<'a>>,
}

pub struct Rendered {
    pub xhtml: String,
    /// e.g. "Vocational profile – version 2".
    pub title: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template failed: {0}")]
    Template(#[from] askama::Error),
}

struct SectionOut {
    heading: String,
    recorded_on: Option<String>,
    /// Paragraphs (split on blank lines), each a list of lines.
    paragraphs: Vec<Vec<String>>,
}

#[derive(Template)]
#[template(path = "document.html", config = "src/render/documents/askama.toml")]
struct Page {
    title: String,
    heading: String,
    status_line: Option<String>,
    patient_name: String,
    nhs_number: String,
    date_of_birth: Option<String>,
    author_name: String,
    author_role: String,
    service: String,
    created: String,
    sessions: String,
    version: String,
    sections: Vec<SectionOut>,
}

/// Replaces characters XML 1.0 does not allow with U+FFFD.
pub fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c.is_control() => '\u{FFFD}',
            '\u{FFFE}' | '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// "999 123 4567"; anything but ten digits is shown as given.
pub fn format_nhs_number(n: &str) -> String {
    if n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit()) {
        format!("{} {} {}", &n[..3], &n[3..6], &n[6..])
    } else {
        n.to_owned()
    }
}

/// "30 November 2026".
pub fn long_date(d: Date) -> String {
    format!("{} {} {}", d.day(), d.month(), d.year())
}

/// Paragraphs split on blank lines; within one, its lines.
pub fn paragraphs(text: &str) -> Vec<Vec<String>> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    text.split("\n\n")
        .map(|p| {
            p.lines()
                .map(|l| l.trim_end().to_owned())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

pub fn render(view: &DocumentView<'_>) -> Result<Rendered, RenderError> {
    let title = if view.version > 1 {
        format!("{} – version {}", view.title, view.version)
    } else {
        view.title.to_owned()
    };
    let version = if view.version > 1 {
        format!("{} (replaces version {})", view.version, view.version - 1)
    } else {
        view.version.to_string()
    };
    let service = match view.organisation_ods {
        Some(ods) => format!("{} (ODS {})", view.service_name, ods),
        None => view.service_name.to_owned(),
    };
    let page = Page {
        title: xml_safe(&title),
        heading: xml_safe(view.title),
        status_line: view.status_line.map(xml_safe),
        patient_name: view
            .patient_name
            .map_or_else(|| "Not given (see NHS number)".to_owned(), xml_safe),
        nhs_number: format_nhs_number(&xml_safe(view.nhs_number)),
        date_of_birth: view.date_of_birth.map(long_date),
        author_name: xml_safe(view.author_name),
        author_role: xml_safe(view.author_role),
        service: xml_safe(&service),
        created: long_date(view.created.date()),
        sessions: view
            .session_dates
            .iter()
            .map(|d| long_date(*d))
            .collect::<Vec<_>>()
            .join(", "),
        version,
        sections: view
            .sections
            .iter()
            .map(|s| SectionOut {
                heading: xml_safe(s.heading),
                recorded_on: s.recorded_on.map(long_date),
                paragraphs: paragraphs(&xml_safe(s.text)),
            })
            .collect(),
    };
    Ok(Rendered {
        xhtml: page.render()?,
        title,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhs_numbers_are_grouped_and_text_is_split_into_paragraphs() {
        assert_eq!(format_nhs_number("9912003888"), "991 200 3888");
        assert_eq!(format_nhs_number("12345"), "12345");
        assert_eq!(
            paragraphs("one\r\ntwo\n\n\nthree\n"),
            vec![
                vec!["one".to_owned(), "two".to_owned()],
                vec!["three".to_owned()]
            ]
        );
        assert_eq!(xml_safe("a\u{7}b\tc"), "a\u{FFFD}b\tc");
        assert_eq!(
            long_date(time::macros::date!(2026 - 11 - 30)),
            "30 November 2026"
        );
    }
}
