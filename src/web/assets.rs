//! The NHS.UK frontend's compiled files, served from the installed package
//! (`web.assets_dir`), never copied into the repository.
//!
//! The CSS refers to its images as `/assets/...`, so the package's
//! `assets/` is mounted there; the CSS and JS get stable paths under
//! `/static/`, and the small module that starts the frontend's scripts is
//! built into the binary.

use crate::web::WebApp;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use std::path::Path;
use tower_http::services::{ServeDir, ServeFile};

const INIT_MODULE: &str = include_str!("ips-bridge.mjs");

pub fn router(dir: &Path) -> Router<WebApp> {
    Router::new()
        .nest_service("/assets", ServeDir::new(dir.join("assets")))
        .route_service(
            "/static/nhsuk-frontend.min.css",
            ServeFile::new(dir.join("nhsuk-frontend.min.css")),
        )
        .route_service(
            "/static/nhsuk-frontend.min.js",
            ServeFile::new(dir.join("nhsuk-frontend.min.js")),
        )
        .route(
            "/static/ips-bridge.mjs",
            get(|| async {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/javascript; charset=utf-8"),
                    )],
                    INIT_MODULE,
                )
            }),
        )
}
