//! The staff pages in a real browser (headless Chromium through
//! chromedriver), signed in through a real OIDC provider (npm
//! `oidc-provider`, PKCE enforced), against the real daemon, RabbitMQ and
//! the FHIR sandbox.
//!
//! Shows: sign-in; the caseload; deciding a referral from the page;
//! recording an outreach attempt through the form and seeing it on the
//! board; a form with problems shows the NHS error summary; markup typed
//! into free text renders as text on every page; a form without its CSRF
//! token is refused; a specialist cannot open the team lead's pages; a team
//! lead sees the team caseload and the fidelity page with the report's
//! numbers. axe-core finds no serious or critical violation on any page,
//! and every page is saved as a screenshot (`IPS_SCREENSHOTS_DIR`, see
//! `deploy/local/screenshot-pages.sh`).

mod common;

use common::browser::{Browser, sign_in};
use common::daemon::Daemon;
use common::fixtures::*;
use common::oidc::OidcProvider;
use common::*;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(25);

const TWO_DNAS: &str = r#"
[[rule]]
id = "primary-care-2-dnas"
name = "Primary care: discharged after 2 consecutive DNAs"
kind = "consecutive_dna"
threshold = 2
warn_before = { dnas = 1 }
"#;

/// Markup and script in free text: must show as text, never run.
const HOSTILE: &str =
    "<script>window.__pwned = 1</script><b>bold</b> & <img src=x onerror=\"window.__pwned=2\">";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn assets_dir() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/local/web-assets/node_modules/nhsuk-frontend/dist/nhsuk"
    )
    .to_owned()
}

/// Nothing hostile ran, and the page shows the markup as text.
async fn assert_escaped(b: &Browser, page: &str) {
    let ran = b
        .client
        .execute("return window.__pwned === undefined;", vec![])
        .await
        .unwrap();
    assert_eq!(ran, json!(true), "script ran on {page}");
    let src = b.source().await;
    assert!(
        !src.contains("<script>window.__pwned"),
        "raw script in {page}"
    );
    assert!(!src.contains("<b>bold</b>"), "raw markup in {page}");
}

/// Every page: no serious accessibility violation, a screenshot, nothing hostile ran.
async fn check_page(b: &Browser, name: &str) {
    b.screenshot(name).await;
    b.assert_no_serious_axe(name).await;
    assert_escaped(b, name).await;
}

async fn referral_id(d: &Daemon, key: &str, status: &str) -> (String, String) {
    let found = eventually(WAIT, "the referral", || async {
        let (_, v) = d
            .api
            .get(&format!("/api/referrals?status={status}&limit=500"))
            .await;
        v["referrals"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|r| r["source_record"]["identifier"]["value"] == json!(key))
    })
    .await;
    (
        found["id"].as_str().unwrap().to_owned(),
        found["case_id"].as_str().unwrap().to_owned(),
    )
}

fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_pages_in_a_browser() {
    let oidc = OidcProvider::start(&OidcProvider::example_users());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, TWO_DNAS).unwrap();
    let (listen, redirect, assets, rules_s) = (
        format!("127.0.0.1:{port}"),
        format!("{base}/auth/callback"),
        assets_dir(),
        rules.display().to_string(),
    );
    let d = Daemon::start(&[
        ("IPS__HTTP__LISTEN", listen.as_str()),
        ("IPS__WEB__ENABLED", "true"),
        ("IPS__WEB__ISSUER", oidc.issuer.as_str()),
        ("IPS__WEB__CLIENT_ID", oidc.client_id.as_str()),
        ("IPS__WEB__CLIENT_SECRET", oidc.client_secret.as_str()),
        ("IPS__WEB__REDIRECT_URL", redirect.as_str()),
        ("IPS__WEB__ASSETS_DIR", assets.as_str()),
        ("IPS__OUTREACH__RULES_FILE", rules_s.as_str()),
        (
            "IPS__TEAM__SPECIALISTS",
            // A configured name with markup: shown on the team and case pages.
            "alice=Alice Specialist,bob=Bob <b>bold</b> <script>window.__pwned=4</script>",
        ),
    ])
    .await;

    // Seed: case A accepted, held by alice, flagged after a DNA, with a
    // job and an attempt whose free text is hostile; referral B awaits a decision.
    let (nhs_a, nhs_b) = (nhs_number(8100), nhs_number(8200));
    let (key_a, key_b) = (format!("web-a-{}", uid()), format!("web-b-{}", uid()));
    d.send_applied(&Referral::new(&key_a, &nhs_a).bars_bundle())
        .await;
    d.send_applied(&Referral::new(&key_b, &nhs_b).bars_bundle())
        .await;
    let (ref_a, case_a) = referral_id(&d, &key_a, "awaiting-decision").await;
    let (ref_b, case_b) = referral_id(&d, &key_b, "awaiting-decision").await;
    let (st, v) = d
        .api
        .post(
            &format!("/api/referrals/{ref_a}/decision"),
            &json!({"outcome": "accepted", "decided_by": "lena"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = d
        .api
        .put(
            &format!("/api/cases/{case_a}/assignment"),
            &json!({"specialist": "alice", "assigned_by": "lena"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let mut dna = appointment(&format!("dna-{}", uid()), &nhs_a, "noshow");
    dna["start"] = json!("2026-11-20T10:00:00Z");
    d.send_applied(&dna).await;
    eventually(WAIT, "the flag", || async {
        let (_, v) = d.api.get("/api/outreach").await;
        (v["count"] == 1).then_some(())
    })
    .await;
    let (st, v) = d
        .api
        .post(
            &format!("/api/cases/{case_a}/job-starts"),
            &json!({"employer": HOSTILE,
        "start_date": "2026-11-02", "hours_band": "03", "paid": true, "recorded_by": HOSTILE}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = d.api.post(&format!("/api/cases/{case_a}/outreach-attempts"), &json!({"method": "phone",
        "outcome": "no-answer", "attempted_at": "2026-11-21T09:00:00Z", "note": HOSTILE, "specialist": "Alice"})).await;
    assert_eq!(st, 201, "{v}");

    // A vocational profile in the record, with markup typed into a section.
    let sections: Vec<_> = [
        "work-goal",
        "work-history",
        "job-preferences",
        "support-wanted",
    ]
    .iter()
    .map(|id| json!({"id": id, "text": format!("{id}: {HOSTILE}")}))
    .collect();
    let (st, v) = d
        .api
        .post(
            &format!("/api/cases/{case_a}/documents/vp/sections"),
            &json!({"session_date": "2026-11-16", "specialist": "Alice", "sections": sections}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = d
        .api
        .post(
            &format!("/api/cases/{case_a}/documents/vp/complete"),
            &json!({"specialist": "Alice"}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let doc = v["documents"][0]["id"].as_str().unwrap().to_owned();
    // A team lead whose name (from the identity provider) carries markup: in every page's header.
    oidc.set_user(
        "lena",
        &json!({"name": "Lena <b>bold</b> Lead", "roles": ["team-lead"]}),
    )
    .await;

    let b = Browser::start().await;
    // Sign in as a specialist: home is My caseload.
    let landed = sign_in(&b, &base, "alice").await;
    assert_eq!(landed.path(), "/caseload", "{landed}");
    assert!(
        b.text("main")
            .await
            .contains(&format!("Case {}", short(&case_a))),
        "caseload shows the case"
    );
    assert!(b.text("header").await.contains("Alice Specialist"));
    check_page(&b, "caseload").await;

    // Decide referral B from the page.
    b.goto(&format!("{base}/referrals")).await;
    check_page(&b, "referrals").await;
    let sb = short(&ref_b);
    b.click(&format!("#accept-{sb}")).await;
    b.click(&format!("#decide-{sb}")).await;
    b.wait_for_url_prefix(&format!("{base}/referrals")).await;
    let decided = eventually(WAIT, "referral B accepted", || async {
        let (_, v) = d.api.get(&format!("/api/referrals/{ref_b}")).await;
        (v["state"] == "accepted").then_some(v)
    })
    .await;
    assert_eq!(decided["decision"], "accepted", "{decided}");
    assert!(
        !b.source().await.contains(&format!("id=\"decide-{sb}\"")),
        "no longer awaiting"
    );

    // Case B is nobody's yet: the specialist takes it from its page.
    b.goto(&format!("{base}/cases/{case_b}")).await;
    b.click("#take-case").await;
    b.wait_for_url_prefix(&format!("{base}/cases/{case_b}#assignment"))
        .await;
    assert!(b.text("main").await.contains("You hold this case"));
    let (_, v) = d.api.get(&format!("/api/cases/{case_b}")).await;
    assert_eq!(v["employment"]["specialist"], "alice", "{v}");

    // The outreach board, then an attempt through the form, seen on the board.
    b.goto(&format!("{base}/outreach")).await;
    check_page(&b, "outreach").await;
    assert_eq!(b.text("#board .attempt-count").await.trim(), "1");
    b.click("#board a[href$='#outreach']").await;
    b.wait_for_url_prefix(&format!("{base}/cases/{case_a}"))
        .await;
    check_page(&b, "case").await;
    b.find("#method")
        .await
        .select_by_value("home-visit")
        .await
        .unwrap();
    b.find("#outcome")
        .await
        .select_by_value("message-left")
        .await
        .unwrap();
    b.fill("#note", "Left a card through the door <i>twice</i>")
        .await;
    b.click("#record-attempt").await;
    // The form posts back to the case page it is on: wait for the new page.
    b.wait_for_source_containing("Left a card through the door &lt;i&gt;twice&lt;/i&gt;")
        .await;
    assert!(
        b.current_url()
            .await
            .as_str()
            .starts_with(&format!("{base}/cases/{case_a}"))
    );
    b.goto(&format!("{base}/outreach")).await;
    assert_eq!(
        b.text("#board .attempt-count").await.trim(),
        "2",
        "the attempt is on the board"
    );
    let (_, v) = d.api.get(&format!("/api/cases/{case_a}")).await;
    assert_eq!(v["outreach"]["attempts"].as_array().unwrap().len(), 2);

    // A form with problems: the NHS error summary, linked to the field.
    b.goto(&format!("{base}/cases/{case_a}")).await;
    b.click("#record-job").await;
    let summary = b.text(".nhsuk-error-summary").await;
    assert!(summary.contains("Enter the employer's name"), "{summary}");
    assert!(b.source().await.contains("href=\"#employer\""));
    check_page(&b, "case-error").await;
    // Then filled in: a job start recorded from the page.
    b.fill("#employer", "Cafe <u>Nero</u>").await;
    b.client
        .execute(
            "document.querySelector('#start_date').value = '2026-11-23'; return true;",
            vec![],
        )
        .await
        .unwrap();
    b.find("#hours_band")
        .await
        .select_by_value("02")
        .await
        .unwrap();
    b.click("#paid").await;
    b.click("#record-job").await;
    let jobs = eventually(WAIT, "the job from the page", || async {
        let (_, v) = d.api.get(&format!("/api/cases/{case_a}")).await;
        let jobs = v["employment"]["jobs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (jobs.len() == 2).then_some(jobs)
    })
    .await;
    assert!(jobs.iter().any(|j| j["employer"] == "Cafe <u>Nero</u>"
        && j["hours_band"] == "02"
        && j["recorded_by"] == "Alice Specialist"));
    assert!(b.source().await.contains("Cafe &lt;u&gt;Nero&lt;/u&gt;"));

    // A form without its CSRF token is refused, and nothing is recorded.
    b.goto(&format!("{base}/cases/{case_a}")).await;
    b.client
        .execute(
            "const f = document.querySelector('form[action$=\"/outreach-attempts\"]');\
             f.querySelector('input[name=csrf]').remove();\
             f.querySelector('#method').value = 'phone'; f.querySelector('#outcome').value = 'contacted';\
             f.submit(); return true;",
            vec![],
        )
        .await
        .unwrap();
    let refused = eventually(WAIT, "the refusal page", || async {
        let t = b.text("main").await;
        t.contains("form").then_some(t)
    })
    .await;
    assert!(
        refused.contains("This form has expired") || refused.contains("not sent from this service"),
        "{refused}"
    );
    let (_, v) = d.api.get(&format!("/api/cases/{case_a}")).await;
    assert_eq!(
        v["outreach"]["attempts"].as_array().unwrap().len(),
        2,
        "nothing recorded without the token"
    );

    b.goto(&format!("{base}/documents")).await;
    check_page(&b, "documents").await;
    assert!(
        b.text("main").await.contains("Vocational profile"),
        "awaiting comment"
    );
    // The document as the record holds it (its Binary, once the outbox wrote it).
    b.click(&format!("a[href='/documents/{doc}']")).await;
    eventually(WAIT, "the rendered document", || async {
        let src = b.source().await;
        if src.contains("Document not available") {
            b.goto(&format!("{base}/documents/{doc}")).await;
            return None;
        }
        src.contains("work-goal: &lt;script&gt;").then_some(())
    })
    .await;
    assert_escaped(&b, "the rendered document").await;
    b.screenshot("document").await;

    // A specialist cannot open the team lead's pages.
    for page in ["team", "reports"] {
        b.goto(&format!("{base}/{page}")).await;
        assert!(
            b.text("h1").await.contains("You do not have permission"),
            "{page}"
        );
    }

    // Sign out, and in as a team lead.
    b.click(".nhsuk-header__account-button").await;
    b.wait_for_url_prefix(&format!("{base}/auth/signed-out"))
        .await;
    b.goto(&format!("{base}/caseload")).await;
    assert!(
        !b.current_url()
            .await
            .as_str()
            .starts_with(&format!("{base}/caseload")),
        "signed out"
    );
    let landed = sign_in(&b, &base, "lena").await;
    assert_eq!(landed.path(), "/team", "{landed}");
    assert!(b.text("main").await.contains("Alice Specialist"));
    assert!(
        b.text("header").await.contains("Lena <b>bold</b> Lead"),
        "the name shows as text"
    );
    check_page(&b, "team").await;
    b.goto(&format!("{base}/cases/{case_a}")).await;
    let src = b.source().await;
    assert!(
        src.contains("Bob &lt;b&gt;bold&lt;/b&gt;"),
        "a configured name shows as text: {}",
        src.find("Bob")
            .map(|i| &src[i.saturating_sub(80)..(i + 120).min(src.len())])
            .unwrap_or("no Bob")
    );
    check_page(&b, "case-as-team-lead").await;
    b.goto(&format!("{base}/reports")).await;
    check_page(&b, "reports").await;
    let received = b
        .text("#fidelity tr[data-key='referrals.received'] td.nhsuk-table__cell--numeric")
        .await;
    let (_, api) = d.api.get("/api/reports/fidelity").await;
    let n = api["measures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "referrals.received")
        .unwrap()["numerator"]
        .clone();
    assert_eq!(n, json!(2.0));
    assert_eq!(received.trim(), "2", "the page shows the report's number");
    assert!(b.source().await.contains("<svg id=\"referrals-chart\""));
}
