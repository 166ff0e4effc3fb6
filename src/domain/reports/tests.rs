use super::*;
use time::macros::{date, datetime};

#[test]
fn quarters_and_months_parse_to_whole_days() {
    let q = Period::quarter("2026Q3").unwrap();
    assert_eq!(
        (q.from, q.to),
        (date!(2026 - 07 - 01), date!(2026 - 09 - 30))
    );
    let q4 = Period::quarter("2026q4").unwrap();
    assert_eq!(q4.to, date!(2026 - 12 - 31));
    assert!(Period::quarter("2026Q5").is_err());
    assert!(Period::quarter("Q3").is_err());
    let m = Period::month("2024-02").unwrap();
    assert_eq!(m.to, date!(2024 - 02 - 29));
    assert!(Period::month("2026-13").is_err());
    assert!(Period::month("2026-1").is_err());
    assert!(m.contains(datetime!(2024-02-29 23:59:59 UTC)));
    assert!(!m.contains(datetime!(2024-03-01 00:00:00 UTC)));
    assert!(Period::new(date!(2026 - 02 - 01), date!(2026 - 01 - 01)).is_err());
}

#[test]
fn caseload_item_one_follows_the_scale() {
    use caseload::{CaseloadLimit, item1_score};
    let sec = CaseloadLimit(20);
    assert_eq!(item1_score(20.0, sec), Some(5));
    assert_eq!(item1_score(20.5, sec), Some(4));
    assert_eq!(item1_score(30.0, sec), Some(3));
    assert_eq!(item1_score(40.0, sec), Some(2));
    assert_eq!(item1_score(41.0, sec), Some(1));
    let primary = CaseloadLimit(25);
    assert_eq!(item1_score(25.0, primary), Some(5));
    assert_eq!(item1_score(30.0, primary), None);
}

#[test]
fn csv_fields_are_quoted_and_formulas_defused() {
    use mhs004::csv_field;
    assert_eq!(csv_field("plain"), "plain");
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_field("=1+1"), "'=1+1");
}

#[test]
fn medians() {
    assert_eq!(median_days(vec![]), None);
    assert_eq!(median_days(vec![3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median_days(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
}
