//! Searches by business identifier: how the bridge finds again a resource
//! it created (its server id is not known when a later change is queued).

use super::client::{FhirClient, Versioned, meta_version};
use super::error::FhirError;
use serde_json::Value;

impl FhirClient {
    /// Finds the one resource of `resource_type` with business identifier
    /// `system|value`; `Ok(None)` when there is none.
    pub async fn find_by_identifier(
        &self,
        resource_type: &str,
        system: &str,
        value: &str,
    ) -> Result<Option<Versioned>, FhirError> {
        let mut url = url::Url::parse(&format!("{}/{}", self.base(), resource_type))
            .map_err(|e| FhirError::InvalidResponse(format!("bad search URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("identifier", &format!("{system}|{value}"));
        let bundle = self.get(url.as_str()).await?;
        let found: Vec<&Value> = bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("resource"))
            .filter(|r| r["resourceType"].as_str() == Some(resource_type))
            .collect();
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(Versioned {
                version: meta_version(one),
                body: (*one).clone(),
            })),
            _ => Err(FhirError::InvalidResponse(format!(
                "{} {resource_type} resources share one business identifier",
                found.len()
            ))),
        }
    }
}
