//! The HTTP client `openidconnect` calls, over the project's reqwest.
//!
//! `openidconnect`'s own reqwest support would pull reqwest 0.12 (through
//! `oauth2`) beside the 0.13 everything else uses; this adapter keeps one
//! reqwest in the build. Redirects are not followed: the provider's
//! endpoints answer directly, and following them would let a discovery
//! document steer the bridge's requests elsewhere (SSRF).

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request to the identity provider failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("unusable response from the identity provider: {0}")]
    Response(#[from] openidconnect::http::Error),
}

#[derive(Clone)]
pub struct OidcHttp(reqwest::Client);

impl OidcHttp {
    pub fn new() -> Result<OidcHttp, reqwest::Error> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()
            .map(OidcHttp)
    }
}

impl<'c> AsyncHttpClient<'c> for OidcHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + Sync + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.0.execute(reqwest::Request::try_from(request)?).await?;
            let mut builder = openidconnect::http::Response::builder()
                .status(response.status())
                .version(response.version());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response.bytes().await?.to_vec();
            Ok(builder.body(body)?)
        })
    }
}
