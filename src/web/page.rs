//! What every page shares: the layout's data ([`Chrome`]), form errors, and
//! turning a template into a response.
//!
//! A page is an askama template in `src/web/templates/` that extends
//! `layout.html` and has a field `chrome`; askama escapes every value, so
//! free text typed by anyone renders as text. The security headers
//! (`Cache-Control: no-store`, the CSP, `nosniff`) are added to every
//! response by a layer on the router (`security.rs`), not here, so an error
//! page from an extractor gets them too.

use super::role::Staff;
use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Which part of the service a page belongs to (its navigation link is
/// marked current).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    None,
    Caseload,
    Team,
    Referrals,
    Outreach,
    Documents,
    Reports,
}

/// One link of the header's navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The layout's data: the header (service name, navigation, who is signed
/// in and the sign-out form) and nothing else.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub service_name: String,
    /// `None` on pages shown to someone not signed in (no navigation then).
    pub staff_name: Option<String>,
    /// The session's form token, for the sign-out form and any other form.
    pub csrf: String,
    /// Team caseload and Fidelity and measures are shown to team leads and admins.
    pub team_lead: bool,
    pub active: Section,
}

impl Chrome {
    pub fn for_staff(service_name: &str, staff: &Staff, active: Section) -> Chrome {
        Chrome {
            service_name: service_name.to_owned(),
            staff_name: Some(staff.name.clone()),
            csrf: staff.csrf.clone(),
            team_lead: staff.sees_team(),
            active,
        }
    }

    /// For pages seen while not signed in (signed out, errors before sign-in).
    pub fn public(service_name: &str) -> Chrome {
        Chrome {
            service_name: service_name.to_owned(),
            staff_name: None,
            csrf: String::new(),
            team_lead: false,
            active: Section::None,
        }
    }

    /// The navigation links this person may follow.
    pub fn nav(&self) -> Vec<NavItem> {
        if self.staff_name.is_none() {
            return Vec::new();
        }
        let all = [
            ("/caseload", "My caseload", Section::Caseload, false),
            ("/team", "Team caseload", Section::Team, true),
            ("/referrals", "Referrals", Section::Referrals, false),
            ("/outreach", "Outreach", Section::Outreach, false),
            ("/documents", "Documents", Section::Documents, false),
            ("/reports", "Fidelity and measures", Section::Reports, true),
        ];
        all.into_iter()
            .filter(|(_, _, _, lead_only)| self.team_lead || !lead_only)
            .map(|(href, label, section, _)| NavItem {
                href,
                label,
                current: section == self.active,
            })
            .collect()
    }
}

/// One problem with a submitted form: `field` is the id of the input (the
/// error summary links to `#field`), `message` says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A rendered page with status 200.
pub fn html<T: Template>(page: &T) -> Response {
    html_status(StatusCode::OK, page)
}

/// A rendered page with the given status. A template that fails to render
/// (a bug, not input) is logged and answered with a bare 500.
pub fn html_status<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
                "Sorry, there is a problem with the service.",
            )
                .into_response()
        }
    }
}

/// A 303 to a path of this service (or the provider's URL during sign-in).
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        // Only URLs the service built get here; one that is not a valid
        // header value goes home rather than failing.
        Err(_) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, HeaderValue::from_static("/"))],
        )
            .into_response(),
    }
}

/// A page with a heading, a few paragraphs and perhaps one link: every
/// error and notice page.
#[derive(Template)]
#[template(path = "message.html", config = "src/web/askama.toml")]
pub struct MessagePage {
    pub chrome: Chrome,
    pub heading: String,
    pub paragraphs: Vec<String>,
    /// `(href, text)` of a link under the text.
    pub link: Option<(String, String)>,
}

impl MessagePage {
    pub fn new(chrome: Chrome, heading: &str, paragraphs: &[&str]) -> MessagePage {
        MessagePage {
            chrome,
            heading: heading.to_owned(),
            paragraphs: paragraphs.iter().map(|p| (*p).to_owned()).collect(),
            link: None,
        }
    }

    pub fn link(mut self, href: &str, text: &str) -> MessagePage {
        self.link = Some((href.to_owned(), text.to_owned()));
        self
    }

    pub fn respond(&self, status: StatusCode) -> Response {
        html_status(status, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn staff(roles: &[super::super::Role]) -> Staff {
        Staff {
            sub: "s".into(),
            name: "Ann <b>Smith</b>".into(),
            roles: roles.iter().copied().collect::<BTreeSet<_>>(),
            csrf: "tok".into(),
        }
    }

    #[test]
    fn team_links_only_for_team_leads_and_admins() {
        use super::super::Role;
        let hrefs = |roles: &[Role]| -> Vec<&str> {
            Chrome::for_staff("S", &staff(roles), Section::Caseload)
                .nav()
                .iter()
                .map(|n| n.href)
                .collect()
        };
        assert!(!hrefs(&[Role::Specialist]).contains(&"/team"));
        assert!(!hrefs(&[Role::Specialist]).contains(&"/reports"));
        assert!(hrefs(&[Role::TeamLead]).contains(&"/reports"));
        assert!(hrefs(&[Role::Admin]).contains(&"/team"));
        assert!(Chrome::public("S").nav().is_empty());
    }

    #[test]
    fn the_layout_escapes_and_carries_the_token() {
        use super::super::Role;
        let page = MessagePage::new(
            Chrome::for_staff("IPS bridge", &staff(&[Role::Specialist]), Section::Caseload),
            "Heading <script>",
            &["a & b"],
        );
        let out = page.render().unwrap_or_default();
        assert!(out.contains("<html lang=\"en\">"), "{out}");
        assert!(
            out.contains("Ann &#60;b&#62;Smith&#60;/b&#62;") || out.contains("Ann &lt;b&gt;"),
            "{out}"
        );
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("name=\"csrf\" value=\"tok\""), "{out}");
        assert!(out.contains("id=\"maincontent\""), "{out}");
        assert!(out.contains("aria-current=\"page\""), "{out}");
    }
}
