//! Reading `config/discharge-rules.toml`: every mistake, each naming its rule.
//!
//! The file is walked by hand over a `toml::Table` rather than deserialised,
//! for two reasons: serde stops at the first error (an operator fixing the
//! file wants the whole list), and serde's messages quote the offending value
//! ("invalid type: string \"...\""). Values from a hand-written file are
//! harmless, but the habit of never echoing input into logs is kept
//! everywhere in the bridge, so messages name keys and types only.

use super::rules::{
    DischargeRule, Exemption, RuleKind, RuleMatch, RuleSet, RuleSetError, WarnBefore,
};
use std::collections::BTreeMap;
use toml::{Table, Value};

const KINDS: &str = "consecutive_dna, dna_within, first_appointment_dna, no_contact_for";
const RULE_KEYS: &str = "id, name, kind, threshold, days, warn_before, applies_to, exempt";
const MATCH_KEYS: [&str; 4] = ["service_types", "specialties", "organisations", "locations"];

impl RuleSet {
    /// Parses and validates a rules file; lists every problem, never only the first.
    pub fn from_toml(text: &str) -> Result<RuleSet, RuleSetError> {
        parse(text)
    }
}

fn parse(text: &str) -> Result<RuleSet, RuleSetError> {
    let table: Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            return Err(RuleSetError {
                problems: vec![(String::new(), syntax_problem(text, &e))],
            });
        }
    };
    let mut problems = Vec::new();
    for key in table.keys().filter(|k| k.as_str() != "rule") {
        problems.push((
            String::new(),
            format!("unknown key `{key}` (each rule is a [[rule]] table)"),
        ));
    }
    let mut rules = Vec::new();
    match table.get("rule") {
        None => {}
        Some(Value::Array(items)) => {
            // id -> index of the first rule using it, for duplicate reports.
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for (i, item) in items.iter().enumerate() {
                let Value::Table(t) = item else {
                    problems.push((
                        format!("rule[{i}]"),
                        "must be a table (write each rule as [[rule]])".into(),
                    ));
                    continue;
                };
                let (id, rule) = parse_rule(i, t, &mut problems);
                if let Some(id) = id {
                    if let Some(first) = seen.get(&id) {
                        problems.push((
                            id.clone(),
                            format!(
                                "the id is used by rule[{first}] and rule[{i}]; ids must be unique"
                            ),
                        ));
                    } else {
                        seen.insert(id, i);
                    }
                }
                rules.extend(rule);
            }
        }
        Some(_) => problems.push((
            String::new(),
            "`rule` must be an array of tables (write each rule as [[rule]])".into(),
        )),
    }
    if problems.is_empty() {
        Ok(RuleSet { rules })
    } else {
        Err(RuleSetError { problems })
    }
}

/// Where the syntax error is, and toml's description of what was expected.
/// toml's `Display` quotes the offending line, so only `message()` is used,
/// and any quoted text in it is dropped.
fn syntax_problem(text: &str, e: &toml::de::Error) -> String {
    let at = match e.span() {
        Some(span) => {
            // toml's spans fall on character boundaries; `get` keeps a
            // surprise from becoming a panic.
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(" at line {line}, column {column}")
        }
        None => String::new(),
    };
    let message = e.message().lines().next().unwrap_or("").trim();
    let message = if message.contains('"') || message.contains('\'') {
        ""
    } else {
        message
    };
    if message.is_empty() {
        format!("TOML syntax error{at}")
    } else {
        format!("TOML syntax error{at}: {message}")
    }
}

/// Collects one rule's problems under its label; returns the rule's id when
/// it is well-formed (for the duplicate check) and the rule when all is well.
fn parse_rule(
    i: usize,
    t: &Table,
    problems: &mut Vec<(String, String)>,
) -> (Option<String>, Option<DischargeRule>) {
    // The label must be known before anything is reported: the id when it is
    // usable, else the position.
    let id = match t.get("id") {
        Some(Value::String(s)) if is_rule_id(s) => Some(s.clone()),
        _ => None,
    };
    let label = id.clone().unwrap_or_else(|| format!("rule[{i}]"));
    let before = problems.len();
    let mut bad = |message: String| problems.push((label.clone(), message));

    match t.get("id") {
        None => bad("missing `id` (lower-case letters, digits and '-')".into()),
        Some(Value::String(_)) if id.is_some() => {}
        Some(Value::String(_)) => bad(
            "`id` must be lower-case letters, digits and '-' (it is carried by flags, events and metrics)"
                .into(),
        ),
        Some(v) => bad(format!("`id` must be a string, found {}", v.type_str())),
    }
    let name = match t.get("name") {
        None => {
            bad("missing `name` (what a person reads)".into());
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            bad("`name` must not be empty".into());
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            bad(format!("`name` must be a string, found {}", v.type_str()));
            None
        }
    };
    let kind_name = match t.get("kind") {
        None => {
            bad(format!("missing `kind` (one of {KINDS})"));
            None
        }
        Some(Value::String(s)) => match s.as_str() {
            k @ ("consecutive_dna" | "dna_within" | "first_appointment_dna" | "no_contact_for") => {
                Some(k)
            }
            _ => {
                bad(format!("`kind` must be one of {KINDS}"));
                None
            }
        },
        Some(v) => {
            bad(format!("`kind` must be a string, found {}", v.type_str()));
            None
        }
    };
    for key in t.keys() {
        match key.as_str() {
            "id" | "name" | "kind" | "warn_before" | "applies_to" | "exempt" => {}
            "threshold" | "days" => {
                let used = match kind_name {
                    Some("consecutive_dna") => key == "threshold",
                    Some("dna_within") => true,
                    Some("no_contact_for") => key == "days",
                    Some(_) => false,
                    None => true, // the kind is already reported
                };
                if !used {
                    bad(format!(
                        "`{key}` does not apply to kind {}",
                        kind_name.unwrap_or_default()
                    ));
                }
            }
            other => bad(format!("unknown key `{other}` (a rule has {RULE_KEYS})")),
        }
    }
    let at_least_one = |key: &str, what: &str, bad: &mut dyn FnMut(String)| -> Option<u32> {
        match t.get(key) {
            None => {
                bad(format!("missing `{key}` ({what})"));
                None
            }
            Some(v) => match count(key, v, bad) {
                Some(0) => {
                    bad(format!("{key} must be at least 1"));
                    None
                }
                n => n,
            },
        }
    };
    let threshold = match kind_name {
        Some("consecutive_dna") => at_least_one(
            "threshold",
            "the number of DNAs in a row that closes the case",
            &mut bad,
        ),
        Some("dna_within") => at_least_one(
            "threshold",
            "the number of DNAs that closes the case",
            &mut bad,
        ),
        _ => None,
    };
    let days = match kind_name {
        Some("dna_within") => at_least_one("days", "the length of the window in days", &mut bad),
        Some("no_contact_for") => {
            at_least_one("days", "days without contact that close the case", &mut bad)
        }
        _ => None,
    };
    let kind = match (kind_name, threshold, days) {
        (Some("consecutive_dna"), Some(threshold), _) => {
            Some(RuleKind::ConsecutiveDna { threshold })
        }
        (Some("dna_within"), Some(threshold), Some(days)) => {
            Some(RuleKind::DnaWithin { threshold, days })
        }
        (Some("first_appointment_dna"), _, _) => Some(RuleKind::FirstAppointmentDna),
        (Some("no_contact_for"), _, Some(days)) => Some(RuleKind::NoContactFor { days }),
        _ => None,
    };
    let warn = match t.get("warn_before") {
        None => {
            bad("missing `warn_before` (warn_before = { dnas = N } or { days = N })".into());
            None
        }
        Some(v) => warn_before(v, &mut bad),
    };
    if let (Some(kind_name), Some(warn)) = (kind_name, warn) {
        check_warning(kind_name, threshold, days, warn, &mut bad);
    }
    let applies_to = match t.get("applies_to") {
        None => Some(RuleMatch::default()),
        Some(v) => rule_match(v, "applies_to", &[], &mut bad),
    };
    let exempt = match t.get("exempt") {
        None => Some(Vec::new()),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (j, item) in items.iter().enumerate() {
                let path = format!("exempt[{j}]");
                match item.as_table().map(|e| e.get("when")) {
                    None => bad(format!("`{path}` must be a table ([[rule.exempt]])")),
                    Some(None) => bad(format!("missing `{path}.when` (when = \"matches\")")),
                    Some(Some(Value::String(w))) if w == "matches" => {
                        if let Some(m) = rule_match(item, &path, &["when"], &mut bad) {
                            if m.is_empty() {
                                bad(format!(
                                    "`{path}` names no codes, so it would exempt every appointment"
                                ));
                            }
                            out.push(Exemption::Matches(m));
                        }
                    }
                    Some(Some(_)) => bad(format!("`{path}.when` must be \"matches\"")),
                }
            }
            Some(out)
        }
        Some(v) => {
            bad(format!(
                "`exempt` must be an array of tables ([[rule.exempt]]), found {}",
                v.type_str()
            ));
            None
        }
    };
    let ok = problems.len() == before;
    let rule = match (ok, id.clone(), name, kind, warn, applies_to, exempt) {
        (
            true,
            Some(id),
            Some(name),
            Some(kind),
            Some(warn_before),
            Some(applies_to),
            Some(exempt),
        ) => Some(DischargeRule {
            id,
            name,
            kind,
            warn_before,
            applies_to,
            exempt,
        }),
        _ => None,
    };
    (id, rule)
}

/// `[a-z0-9-]+`: safe in metric labels, event names and identifiers.
pub(super) fn is_rule_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A whole number that fits a `u32`.
fn count(path: &str, v: &Value, bad: &mut dyn FnMut(String)) -> Option<u32> {
    match v {
        Value::Integer(n) => match u32::try_from(*n) {
            Ok(n) => Some(n),
            Err(_) => {
                bad(format!(
                    "`{path}` must be a whole number from 0 to {}",
                    u32::MAX
                ));
                None
            }
        },
        other => {
            bad(format!(
                "`{path}` must be a whole number, found {}",
                other.type_str()
            ));
            None
        }
    }
}

fn warn_before(v: &Value, bad: &mut dyn FnMut(String)) -> Option<WarnBefore> {
    let Value::Table(t) = v else {
        bad(format!(
            "`warn_before` must be a table such as {{ dnas = 1 }} or {{ days = 7 }}, found {}",
            v.type_str()
        ));
        return None;
    };
    for key in t.keys().filter(|k| !matches!(k.as_str(), "dnas" | "days")) {
        bad(format!(
            "unknown key `warn_before.{key}` (give dnas or days)"
        ));
    }
    match (t.get("dnas"), t.get("days")) {
        (Some(_), Some(_)) => {
            bad("`warn_before` must give either dnas or days, not both".into());
            None
        }
        (Some(n), None) => count("warn_before.dnas", n, bad).map(WarnBefore::Dnas),
        (None, Some(n)) => count("warn_before.days", n, bad).map(WarnBefore::Days),
        (None, None) => {
            bad(
                "`warn_before` must give dnas or days (warn_before = { dnas = N } or { days = N })"
                    .into(),
            );
            None
        }
    }
}

/// A warning must fit its rule: counted in the unit the rule counts, and
/// starting after something has happened. The unit is checked even when the
/// rule's numbers are wrong, so that one mistake does not hide another.
fn check_warning(
    kind: &str,
    threshold: Option<u32>,
    days: Option<u32>,
    warn: WarnBefore,
    bad: &mut dyn FnMut(String),
) {
    match (kind, warn) {
        ("no_contact_for", WarnBefore::Dnas(_)) => bad(
            "warn_before.dnas does not apply to no_contact_for, which counts days: give warn_before = { days = N }".into(),
        ),
        ("no_contact_for", WarnBefore::Days(n)) => {
            if days.is_some_and(|d| n >= d) {
                bad("warn_before.days must be less than days: the warning would start at the last contact, before any time without contact".into());
            }
        }
        (_, WarnBefore::Days(_)) => bad(format!(
            "warn_before.days does not apply to {kind}, which counts DNAs: give warn_before = {{ dnas = N }}"
        )),
        ("first_appointment_dna", WarnBefore::Dnas(n)) => {
            if n != 1 {
                bad("warn_before.dnas must be 1 for first_appointment_dna (the warning starts when the first appointment is booked)".into());
            }
        }
        (_, WarnBefore::Dnas(n)) => {
            if threshold.is_some_and(|t| n >= t) {
                bad("warn_before.dnas must be less than threshold: with threshold or more DNAs to go, the warning would start before any DNA".into());
            }
        }
    }
}

/// A [`RuleMatch`] table at `path`; `also` are keys the caller reads itself.
fn rule_match(
    v: &Value,
    path: &str,
    also: &[&str],
    bad: &mut dyn FnMut(String),
) -> Option<RuleMatch> {
    let Value::Table(t) = v else {
        bad(format!("`{path}` must be a table, found {}", v.type_str()));
        return None;
    };
    let mut ok = true;
    for key in t.keys() {
        if !MATCH_KEYS.contains(&key.as_str()) && !also.contains(&key.as_str()) {
            bad(format!(
                "unknown key `{path}.{key}` (give {})",
                MATCH_KEYS.join(", ")
            ));
            ok = false;
        }
    }
    let mut field = |key: &str| -> Vec<String> {
        let Some(v) = t.get(key) else {
            return Vec::new();
        };
        let items = v
            .as_array()
            .map(|a| a.iter().map(Value::as_str).collect::<Option<Vec<_>>>());
        match items {
            Some(Some(codes)) if codes.iter().all(|c| !c.trim().is_empty()) => {
                codes.into_iter().map(str::to_owned).collect()
            }
            Some(Some(_)) => {
                bad(format!("`{path}.{key}` must not contain empty codes"));
                ok = false;
                Vec::new()
            }
            _ => {
                bad(format!("`{path}.{key}` must be a list of codes (strings)"));
                ok = false;
                Vec::new()
            }
        }
    };
    let m = RuleMatch {
        service_types: field("service_types"),
        specialties: field("specialties"),
        organisations: field("organisations"),
        locations: field("locations"),
    };
    ok.then_some(m)
}
