//! Headless Chromium for the staff pages' browser tests: Debian's `chromium` driven
//! through `chromedriver` with fantoccini, plus axe-core accessibility checks
//! (`deploy/local/web-assets/node_modules/axe-core/axe.min.js`) and screenshots.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`ensure_chromium` in
//! `deploy/local/services.sh`, which `tests/run.sh` runs) and the web assets' npm
//! packages (`ensure_web_assets`).

use fantoccini::wd::{Capabilities, TimeoutConfiguration};
use fantoccini::{Client, ClientBuilder, Locator};
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const AXE_JS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/local/web-assets/node_modules/axe-core/axe.min.js"
);
/// The WCAG tags axe checks (A and AA of WCAG 2.0, 2.1 and 2.2).
pub const AXE_TAGS: [&str; 5] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];
/// How long helpers wait for an element or a navigation.
pub const WAIT: Duration = Duration::from_secs(20);

/// One axe-core rule violation on the page.
#[derive(Debug, Clone, Deserialize)]
pub struct AxeViolation {
    /// The rule, e.g. `image-alt`, `color-contrast`, `label`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical` (axe may leave it out).
    pub impact: Option<String>,
    pub help: String,
    #[serde(rename = "helpUrl")]
    pub help_url: String,
    /// CSS selectors of the offending elements.
    pub targets: Vec<String>,
}

impl AxeViolation {
    pub fn is_serious(&self) -> bool {
        matches!(self.impact.as_deref(), Some("serious" | "critical"))
    }
}

impl std::fmt::Display for AxeViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] {}: {} ({}) at {}",
            self.impact.as_deref().unwrap_or("?"),
            self.id,
            self.help,
            self.help_url,
            self.targets.join(", ")
        )
    }
}

/// A headless Chromium session of our own; chromedriver and Chromium are stopped on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    driver_port: u16,
    session_id: Option<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session.
    /// Panics (does not skip) if Chromium or chromedriver is not installed.
    pub async fn start() -> Browser {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: the browser tests need Debian's chromium and chromium-driver. \
                 Run `source deploy/local/services.sh && ensure_chromium` (as root or with sudo), \
                 or tests/run.sh, which does it."
            );
        }
        assert!(
            Path::new(AXE_JS).exists(),
            "{AXE_JS} is missing: run `source deploy/local/services.sh && ensure_web_assets` \
             (npm ci in deploy/local/web-assets), or tests/run.sh"
        );
        let profile = tempfile::tempdir().expect("browser profile dir");
        let log_path = profile.path().join("chromedriver.log");
        let mut last_err = String::new();
        // The free port is found by binding and releasing it; another process could take it
        // in between, so a failed start is retried on a new port.
        for _ in 0..3 {
            let port = free_port();
            let mut cmd = Command::new(CHROMEDRIVER);
            cmd.arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log_path.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so drop can stop Chromium with it.
                .process_group(0);
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let mut driver = cmd.spawn().expect("start chromedriver");
            match connect(port, profile.path()).await {
                Ok(client) => {
                    let session_id = client.session_id().await.ok().flatten();
                    client
                        .update_timeouts(TimeoutConfiguration::new(
                            Some(Duration::from_secs(60)),
                            Some(Duration::from_secs(60)),
                            Some(Duration::ZERO),
                        ))
                        .await
                        .expect("set WebDriver timeouts");
                    return Browser {
                        client,
                        driver,
                        driver_port: port,
                        session_id,
                        _profile: profile,
                    };
                }
                Err(e) => {
                    last_err = e;
                    kill_group(&mut driver);
                }
            }
        }
        panic!(
            "could not start a headless Chromium session: {last_err}\nchromedriver log:\n{}",
            tail(
                &std::fs::read_to_string(&log_path).unwrap_or_default(),
                4000
            )
        );
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    pub async fn current_url(&self) -> url::Url {
        self.client.current_url().await.expect("current URL")
    }

    /// Waits (up to [`WAIT`]) for the element matching `css` and returns it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(el) => el,
            Err(e) => panic!(
                "no element {css:?} on {} ({e}); page text:\n{}",
                self.current_url().await,
                tail(&self.body_text().await, 2000)
            ),
        }
    }

    /// Clears the input matching `css` and types `value` into it.
    pub async fn fill(&self, css: &str, value: &str) {
        let el = self.find(css).await;
        el.clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        el.send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// The visible text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("text of {css}: {e}"))
    }

    /// The page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    /// Waits (up to [`WAIT`]) until the loaded page's HTML contains `needle`:
    /// for a form that posts back to the page it is on, where the URL does
    /// not change and the old page is "complete" until the new one replaces it.
    pub async fn wait_for_source_containing(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.ready().await && self.source().await.contains(needle) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "the page did not show {needle:?} within {WAIT:?}; page text:\n{}",
                    tail(&self.body_text().await, 2000)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (up to [`WAIT`]) until the URL starts with `prefix` and the page has loaded;
    /// returns the URL.
    pub async fn wait_for_url_prefix(&self, prefix: &str) -> url::Url {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.current_url().await;
            if url.as_str().starts_with(prefix) && self.ready().await {
                return url;
            }
            if Instant::now() > deadline {
                panic!(
                    "the browser did not reach {prefix} within {WAIT:?}; it is on {url}, page text:\n{}",
                    tail(&self.body_text().await, 2000)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the viewport as `<name>.png` in `$IPS_SCREENSHOTS_DIR`, or else
    /// `<target dir>/screenshots/`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let file: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{file}.png"));
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Runs axe-core on the current page (WCAG 2.0/2.1/2.2 A and AA rules) and returns
    /// every violation, whatever its impact.
    pub async fn axe(&self) -> Vec<AxeViolation> {
        let loaded = self
            .client
            .execute("return typeof window.axe === 'object';", vec![])
            .await
            .expect("check for axe");
        if loaded != Value::Bool(true) {
            let source = std::fs::read_to_string(AXE_JS).unwrap_or_else(|e| {
                panic!("{AXE_JS}: {e} (run ensure_web_assets from deploy/local/services.sh)")
            });
            self.client
                .execute(&source, vec![])
                .await
                .expect("inject axe-core");
        }
        const RUN: &str = r#"
            const [tags, done] = arguments;
            const selector = (t) => Array.isArray(t) ? t.join(' >>> ') : String(t);
            axe.run(document, { runOnly: { type: 'tag', values: tags } }).then(
              (r) => done({ violations: r.violations.map((v) => ({
                id: v.id, impact: v.impact ?? null, help: v.help, helpUrl: v.helpUrl,
                targets: v.nodes.map((n) => n.target.map(selector).join(' ')),
              })) }),
              (e) => done({ error: String(e && e.stack || e) }),
            );
        "#;
        let out = self
            .client
            .execute_async(RUN, vec![json!(AXE_TAGS)])
            .await
            .expect("run axe-core");
        if let Some(err) = out.get("error") {
            panic!("axe-core failed on {}: {err}", self.current_url().await);
        }
        serde_json::from_value(out["violations"].clone()).expect("axe violations")
    }

    /// Panics listing the serious and critical axe violations on the current page, if any.
    pub async fn assert_no_serious_axe(&self, page_name: &str) {
        let serious: Vec<_> = self
            .axe()
            .await
            .into_iter()
            .filter(|v| v.is_serious())
            .collect();
        if !serious.is_empty() {
            let shot = self.screenshot(&format!("axe-failure-{page_name}")).await;
            panic!(
                "{} serious or critical accessibility violation(s) on {page_name} ({}; screenshot {}):\n{}",
                serious.len(),
                self.current_url().await,
                shot.display(),
                serious
                    .iter()
                    .map(|v| format!("  - {v}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }

    async fn ready(&self) -> bool {
        self.client
            .execute("return document.readyState;", vec![])
            .await
            .map(|s| s == "complete")
            .unwrap_or(false)
    }

    async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session so chromedriver quits Chromium and removes its temp files; a
        // blocking request, as drop cannot await. Then the whole process group goes.
        if let Some(id) = &self.session_id {
            delete_session(self.driver_port, id);
        }
        kill_group(&mut self.driver);
    }
}

/// Signs `username` in to the daemon at `base_url` through the provider's form: opens
/// `{base_url}/auth/sign-in` (which redirects to the provider), fills `#login`, clicks
/// `#sign-in`, and waits until the browser is back on `base_url`; returns that URL.
pub async fn sign_in(browser: &Browser, base_url: &str, username: &str) -> url::Url {
    let base = base_url.trim_end_matches('/');
    browser.goto(&format!("{base}/auth/sign-in")).await;
    browser.fill("#login", username).await;
    browser.click("#sign-in").await;
    browser.wait_for_url_prefix(base).await
}

/// `$IPS_SCREENSHOTS_DIR`, or `<target dir>/screenshots` (wherever cargo's target dir is).
pub fn screenshots_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("IPS_SCREENSHOTS_DIR") {
        return PathBuf::from(dir);
    }
    // CARGO_TARGET_TMPDIR is <target dir>/tmp for integration tests.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("screenshots")
}

async fn connect(port: u16, profile: &Path) -> Result<Client, String> {
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    // Wait for chromedriver to listen.
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/status")).await
            && r.status().is_success()
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("chromedriver did not answer on port {port}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut caps = Capabilities::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--window-size=1280,1000",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--lang=en-GB",
                format!("--user-data-dir={}", profile.join("profile").display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&url)
        .await
        .map_err(|e| format!("new WebDriver session: {e}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `DELETE /session/{id}` over a plain blocking socket (for drop).
fn delete_session(port: u16, id: &str) {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let req = format!(
        "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_ok() {
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
}

/// SIGKILL to the child's process group (chromedriver and any Chromium left), then reap.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on the process group our own unreaped child leads.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
