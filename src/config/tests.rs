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
fn outreach_rules_load_with_the_settings() {
    let s = Settings::load_from(None, env(&[])).unwrap();
    let ids = s.outreach.rules().ids();
    assert!(ids.contains(&"primary-care-2-consecutive-dna"), "{ids:?}");
    assert_eq!(s.outreach.flag_category_code, "contact");
    assert_eq!(
        s.outreach.task_lead,
        std::time::Duration::from_secs(2 * 86400)
    );
    assert!(s.outreach.flag_code_coding().is_none());
    // The rules are not part of the printed configuration, only their file.
    assert!(
        !s.redacted_toml().contains("primary-care-2"),
        "{}",
        s.redacted_toml()
    );
}

#[test]
fn each_rule_problem_is_a_config_problem_naming_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("rules.toml");
    std::fs::write(
        &f,
        "[[rule]]\nid = \"gp-x\"\nname = \"x\"\nkind = \"consecutive_dna\"\nthreshold = 0\nwarn_before = { dnas = 0 }\n\
         [[rule]]\nname = \"y\"\nkind = \"no_contact_for\"\ndays = 28\nwarn_before = { dnas = 1 }\n",
    )
    .unwrap();
    let err = Settings::load_from(
        None,
        env(&[("IPS__OUTREACH__RULES_FILE", f.to_str().unwrap())]),
    )
    .unwrap_err();
    let lines: Vec<String> = err.0.iter().map(|p| p.to_string()).collect();
    assert!(
        lines.contains(&"outreach.rules_file: rule gp-x: threshold must be at least 1".into()),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("outreach.rules_file: rule[1]: missing `id`")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("outreach.rules_file: rule[1]: warn_before.dnas does not apply")),
        "{err}"
    );
}

#[test]
fn a_missing_rules_file_and_half_a_flag_coding_are_problems() {
    let err = Settings::load_from(
        None,
        env(&[
            ("IPS__OUTREACH__RULES_FILE", "no/such/rules.toml"),
            ("IPS__OUTREACH__FLAG_CODE_CODE", "ips-outreach"),
            ("IPS__OUTREACH__TASK_LEAD", "0s"),
        ]),
    )
    .unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"outreach.rules_file"), "{err}");
    assert!(keys.contains(&"outreach.flag_code_system"), "{err}");
    assert!(keys.contains(&"outreach.task_lead"), "{err}");
    assert!(err.to_string().contains("working directory"), "{err}");
}

#[test]
fn a_flag_coding_given_whole_is_used() {
    let s = Settings::load_from(
        None,
        env(&[
            (
                "IPS__OUTREACH__FLAG_CODE_SYSTEM",
                "https://trust.example.nhs.uk/CodeSystem/flags",
            ),
            ("IPS__OUTREACH__FLAG_CODE_CODE", "ips-outreach"),
            ("IPS__OUTREACH__FLAG_CODE_DISPLAY", "IPS assertive outreach"),
        ]),
    )
    .unwrap();
    assert_eq!(
        s.outreach.flag_code_coding(),
        Some((
            "https://trust.example.nhs.uk/CodeSystem/flags",
            "ips-outreach",
            "IPS assertive outreach"
        ))
    );
}

#[test]
fn poller_resources_from_the_environment_are_checked() {
    use crate::config::PolledResource;
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

#[test]
fn mesh_and_routing_problems_are_all_listed() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mesh.toml");
    std::fs::write(
        &f,
        r#"
[routing]
default = "fhir"
[[routing.rules]]
kind = "vp"
practice = "A81001"
route = "mesh"
[[routing.rules]]
practice = "!"
route = "both"
"#,
    )
    .unwrap();
    // MESH used by a route but off.
    let err = Settings::load_from(Some(&f), env(&[])).unwrap_err();
    assert!(err.0.iter().any(|p| p.key == "routing"), "{err}");
    // On, but with nothing set: every missing piece named at once, and the
    // rule's practice without a mailbox.
    let err = Settings::load_from(Some(&f), env(&[("IPS__MESH__ENABLED", "true")])).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    for k in [
        "mesh.mailbox",
        "mesh.password",
        "mesh.shared_key",
        "routing.rules[0]",
        "routing.rules[1].practice",
    ] {
        assert!(keys.contains(&k), "{k} missing from {err}");
    }
    // A wrong route or an unknown key in a rule is named too.
    std::fs::write(
        &f,
        "[routing]\ndefault = \"pigeon\"\n[[routing.rules]]\nroute = \"fhir\"\npractise = \"A81001\"\n",
    )
    .unwrap();
    let err = Settings::load_from(Some(&f), env(&[])).unwrap_err();
    assert!(err.0.iter().any(|p| p.key.starts_with("routing")), "{err}");
    // A complete MESH setting validates, and its secrets never print.
    let ok = Settings::load_from(
        None,
        env(&[
            ("IPS__MESH__ENABLED", "true"),
            ("IPS__MESH__MAILBOX", "X26ABC1"),
            ("IPS__MESH__PASSWORD", "mesh-secret-1"),
            ("IPS__MESH__SHARED_KEY", "mesh-secret-2"),
            ("IPS__MESH__MAILBOXES__A81001", "X26ABC2"),
            ("IPS__ROUTING__DEFAULT", "both"),
        ]),
    )
    .unwrap();
    assert_eq!(ok.mesh.mailbox_for("a81001"), Some("X26ABC2"));
    let shown = ok.redacted_toml();
    assert!(!shown.contains("mesh-secret"), "{shown}");
}
