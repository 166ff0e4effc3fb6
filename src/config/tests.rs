use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_are_valid() {
    let s = Settings::load_from(None, env(&[])).expect("embedded defaults must validate");
    assert_eq!(s.amqp.inbound_queue, "ips-bridge.inbound");
}

#[test]
fn environment_overrides_including_lists() {
    let s = Settings::load_from(
        None,
        env(&[
            ("IPS__AMQP__PREFETCH", "50"),
            ("IPS__AMQP__BATCH_SIZE", "10"),
            ("IPS__INTAKE__BARS_SERVICE_IDS", "1,2"),
        ]),
    )
    .unwrap();
    assert_eq!(s.amqp.prefetch, 50);
    assert_eq!(s.intake.bars_service_ids, vec!["1", "2"]);
    // A one-element list that looks like a number stays a list of strings.
    let s = Settings::load_from(
        None,
        env(&[("IPS__INTAKE__BARS_SERVICE_IDS", "2000072489")]),
    )
    .unwrap();
    assert_eq!(s.intake.bars_service_ids, vec!["2000072489"]);
}

#[test]
fn lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(
        &f,
        "[amqp]\nprefetchh = 3\n[fhir]\nbase_url = \"not a url\"\n[service]\nods_code = \"!!\"\n",
    )
    .unwrap();
    let err = Settings::load_from(Some(&f), env(&[])).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"amqp.prefetchh"), "{err}");
    assert!(keys.contains(&"fhir.base_url"), "{err}");
    assert!(keys.contains(&"service.ods_code"), "{err}");
}

#[test]
fn type_errors_in_two_sections_are_both_reported() {
    let err = Settings::load_from(
        None,
        env(&[
            ("IPS__AMQP__PREFETCH", "lots"),
            ("IPS__POLLER__INTERVAL", "soon"),
        ]),
    )
    .unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"amqp.prefetch"), "{err}");
    assert!(keys.contains(&"poller.interval"), "{err}");
}

#[test]
fn secrets_come_from_files_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("token");
    std::fs::write(&f, "s3cret-token\n").unwrap();
    let k = dir.path().join("patient.key");
    std::fs::write(&k, "patient-key-0123456789abcdef0123456789\n").unwrap();
    let s = Settings::load_from(
        None,
        env(&[
            ("IPS__STORE__PATIENT_KEY_FILE", k.to_str().unwrap()),
            ("IPS__HTTP__API_TOKEN_FILE", f.to_str().unwrap()),
            ("IPS__AMQP__URL", "amqp://u:pw-xyz@host:5672/%2f"),
        ]),
    )
    .unwrap();
    assert_eq!(s.http.api_token.expose_secret(), "s3cret-token");
    let shown = s.redacted_toml();
    assert!(
        !shown.contains("s3cret-token")
            && !shown.contains("pw-xyz")
            && !shown.contains("patient-key-0123"),
        "{shown}"
    );
    assert!(shown.contains("patient_key = \"<redacted>\""), "{shown}");
    assert!(s.patient_key().is_some_and(|k| k.is_ok()));
    assert!(!format!("{s:?}").contains("s3cret-token"));
}

#[test]
fn a_short_patient_key_is_a_problem_and_none_is_not() {
    let err = Settings::load_from(None, env(&[("IPS__STORE__PATIENT_KEY", "short")])).unwrap_err();
    assert!(err.0.iter().any(|p| p.key == "store.patient_key"), "{err}");
    let s = Settings::load_from(None, env(&[])).unwrap();
    assert!(
        s.patient_key().is_none(),
        "check-config accepts no key; run refuses"
    );
}

#[test]
fn poller_resources_from_the_environment_are_checked() {
    use crate::fhir::poller::PolledResource;
    let s = Settings::load_from(None, env(&[("IPS__POLLER__RESOURCES", "Appointment")])).unwrap();
    assert_eq!(s.poller.resources, [PolledResource::Appointment]);
    for bad in ["Appointment,Appointment", "Encounter"] {
        let err = Settings::load_from(None, env(&[("IPS__POLLER__RESOURCES", bad)])).unwrap_err();
        let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
        assert!(
            keys.iter().any(|k| k.starts_with("poller.resources")),
            "{bad}: {err}"
        );
    }
}
