//! Identifier and code systems the bridge reads and writes, in one place so
//! the parser and the resources it writes cannot drift apart.

pub use super::nhs_number::NHS_NUMBER_SYSTEM;
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
pub const SNOMED_SYSTEM: &str = "http://snomed.info/sct";
pub const DOS_SERVICE_ID_SYSTEM: &str = "https://fhir.nhs.uk/Id/dos-service-id";
pub const BARS_EVENT_SYSTEM: &str = "https://fhir.nhs.uk/CodeSystem/message-events-bars";
