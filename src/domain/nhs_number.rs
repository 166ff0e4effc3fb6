//! NHS number: a 10-digit identifier with a modulus-11 check digit.
//!
//! The type can only hold a number that passed the check, and it never shows
//! the number in `Debug` or `Display`: a `NhsNumber` that ends up in a log line
//! or an error message by accident prints `NHS number ***`, not the digits.
//! Code that must send the number to the record (FHIR identifiers, the store)
//! asks for it explicitly with [`NhsNumber::expose`].

use super::patient_key::PatientKey;
use std::fmt;

/// The FHIR identifier system for NHS numbers.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// A validated NHS number.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NhsNumber(String);

/// Why a string is not an NHS number. Messages name the rule, never the digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    #[error("NHS number must have 10 digits, found {0}")]
    WrongLength(usize),
    #[error("NHS number may contain only digits and spaces")]
    NotDigits,
    #[error("NHS number fails the modulus-11 check (check value 10 is never valid)")]
    CheckValueTen,
    #[error("NHS number fails the modulus-11 check (check digit does not match)")]
    CheckDigitMismatch,
}

impl NhsNumber {
    /// Parses an NHS number, accepting the common `943 476 5919` grouping.
    pub fn parse(input: &str) -> Result<Self, NhsNumberError> {
        let mut digits = [0u8; 10];
        let mut len = 0usize;
        for c in input.trim().chars() {
            match c {
                ' ' | '-' => continue,
                '0'..='9' => {
                    if len < 10 {
                        digits[len] = c as u8 - b'0';
                    }
                    len += 1;
                }
                _ => return Err(NhsNumberError::NotDigits),
            }
        }
        if len != 10 {
            return Err(NhsNumberError::WrongLength(len));
        }
        match check_digit(&digits) {
            None => Err(NhsNumberError::CheckValueTen),
            Some(d) if d != digits[9] => Err(NhsNumberError::CheckDigitMismatch),
            Some(_) => Ok(NhsNumber(
                digits.iter().map(|d| (b'0' + d) as char).collect(),
            )),
        }
    }

    /// The digits, for the few places that must carry them (FHIR payloads, the store).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A stable, one-way lookup key, so that patients can be matched and
    /// indexed without the number appearing in keys, URLs or metrics. Keyed
    /// (HMAC-SHA256): an unkeyed hash of a 10-digit number is reversed by
    /// trying them all.
    pub fn lookup_hash(&self, key: &PatientKey) -> String {
        key.hash(&[b"ips-bridge/nhs-number/v2:", self.0.as_bytes()])
    }
}

/// The modulus-11 check digit of the first nine digits, or `None` when the
/// remainder makes it 10 (such numbers are never issued).
pub fn check_digit(digits: &[u8; 10]) -> Option<u8> {
    let sum: u32 = digits[..9]
        .iter()
        .enumerate()
        .map(|(i, d)| u32::from(*d) * (10 - i as u32))
        .sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        d => Some(d as u8),
    }
}

impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NhsNumber(***)")
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NHS number ***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_known_valid_numbers() {
        for n in ["9912003888", "9000000009", "943 476 5919"] {
            assert!(NhsNumber::parse(n).is_ok(), "{n} should be valid");
        }
        assert_eq!(
            NhsNumber::parse("943 476 5919").unwrap().expose(),
            "9434765919"
        );
    }

    #[test]
    fn rejects_with_named_reason() {
        assert_eq!(
            NhsNumber::parse("9912003889"),
            Err(NhsNumberError::CheckDigitMismatch)
        );
        assert_eq!(
            NhsNumber::parse("12345"),
            Err(NhsNumberError::WrongLength(5))
        );
        assert_eq!(
            NhsNumber::parse("99120038AB"),
            Err(NhsNumberError::NotDigits)
        );
        // 100000000x: weighted sum 10, 11 - 10 = 1 expected, 0 given.
        assert_eq!(
            NhsNumber::parse("1000000000"),
            Err(NhsNumberError::CheckDigitMismatch)
        );
        // 100000001x: weighted sum 12, 12 mod 11 = 1, 11 - 1 = 10: never valid.
        assert_eq!(
            NhsNumber::parse("1000000010"),
            Err(NhsNumberError::CheckValueTen)
        );
    }

    #[test]
    fn never_shows_the_digits() {
        let n = NhsNumber::parse("9912003888").unwrap();
        assert!(!format!("{n:?}").contains("9912003888"));
        assert!(!format!("{n}").contains("9912003888"));
        let key = PatientKey::from_bytes(&[7u8; 32]).unwrap();
        assert!(!n.lookup_hash(&key).contains("9912003888"));
    }

    /// The lookup hash depends on the key, and is not the old unkeyed SHA-256
    /// (with or without its label) that anyone could recompute.
    #[test]
    fn lookup_hash_is_keyed() {
        use sha2::{Digest, Sha256};
        let n = NhsNumber::parse("9912003888").unwrap();
        let a = PatientKey::from_bytes(&[1u8; 32]).unwrap();
        let b = PatientKey::from_bytes(&[2u8; 32]).unwrap();
        assert_eq!(n.lookup_hash(&a), n.lookup_hash(&a));
        assert_ne!(n.lookup_hash(&a), n.lookup_hash(&b));
        let plain = hex::encode(Sha256::digest(b"9912003888"));
        let labelled = hex::encode(Sha256::digest(b"ips-bridge/nhs-number/v1:9912003888"));
        for k in [&a, &b] {
            assert_ne!(n.lookup_hash(k), plain);
            assert_ne!(n.lookup_hash(k), labelled);
        }
    }

    /// Independent restatement of the definition in the NHS data dictionary,
    /// written directly from it rather than from the code above.
    fn definition_valid(s: &str) -> bool {
        let d: Vec<u32> = s.chars().map(|c| c.to_digit(10).unwrap()).collect();
        let total: u32 = (1..=9).map(|i| d[i - 1] * (11 - i as u32)).sum();
        let check = 11 - (total % 11);
        let check = if check == 11 { 0 } else { check };
        check != 10 && check == d[9]
    }

    proptest! {
        #[test]
        fn agrees_with_modulus_11_definition(s in "[0-9]{10}") {
            prop_assert_eq!(NhsNumber::parse(&s).is_ok(), definition_valid(&s));
        }

        #[test]
        fn every_nine_digit_prefix_has_at_most_one_valid_number(p in "[0-9]{9}") {
            let valid = (0..10).filter(|c| NhsNumber::parse(&format!("{p}{c}")).is_ok()).count();
            prop_assert!(valid <= 1);
        }
    }
}
