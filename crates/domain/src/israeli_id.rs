//! The Israeli identity-number check digit (ת"ז), which company numbers (ח"פ), partnership,
//! nonprofit and other registry numbers share.
//!
//! The rule (providers.md §5): left-pad to 9 digits; multiply the digits by 1,2,1,2,… from the
//! left; a product above 9 has 9 subtracted (the same as adding its two digits); the number is
//! valid when the sum is divisible by 10. `123456782` is valid.
//!
//! Registry prefixes (51 private company, 58 nonprofit, …) are heuristics only and are not
//! checked here.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::errors::{FieldProblem, strip_bidi_marks};

/// Whether `digits` (1 to 9 ASCII digits, nothing else) carries a valid check digit.
///
/// This is the bare check-digit rule: `000000000` passes it. [`CorporateNumber::parse`] adds
/// the rules a real registration number must also satisfy.
pub fn is_valid_israeli_id(digits: &str) -> bool {
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    weighted_sum(digits).is_multiple_of(10)
}

/// The check digit that completes `first_eight` (1 to 8 digits, left-padded to 8) into a valid
/// 9-digit number; `None` for anything else. Handy for generating valid test numbers.
pub fn israeli_id_check_digit(first_eight: &str) -> Option<u8> {
    if first_eight.is_empty()
        || first_eight.len() > 8
        || !first_eight.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // Appending a 0 shifts the prefix into positions 1..=8; the 9th digit has weight 1, so the
    // missing amount is exactly the check digit.
    let sum = weighted_sum(&format!("{first_eight:0>8}0"));
    Some(((10 - sum % 10) % 10) as u8)
}

/// The weighted sum over the number left-padded to 9 digits. The caller guarantees 1..=9 ASCII
/// digits.
fn weighted_sum(digits: &str) -> u32 {
    let padding = 9 - digits.len();
    digits
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let weight = if (i + padding).is_multiple_of(2) {
                1
            } else {
                2
            };
            let product = u32::from(b - b'0') * weight;
            if product > 9 { product - 9 } else { product }
        })
        .sum()
}

/// A corporate or identity number (ח"פ, ע"ר, ת"ז of a sole trader), always 9 digits with a
/// valid check digit.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CorporateNumber(String);

impl CorporateNumber {
    /// Parses digits with optional spaces and dashes (`51-555555-5`), 1 to 9 digits after
    /// cleaning, left-padded with zeros to 9. Invisible bidi marks are ignored. All zeros is
    /// refused: it passes the check digit but is no one's number.
    pub fn parse(input: &str) -> Result<Self, FieldProblem> {
        let input = strip_bidi_marks(input);
        let input = input.trim();
        if input.is_empty() {
            return Err(FieldProblem::required());
        }
        let mut digits = String::with_capacity(9);
        for c in input.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' => {}
                _ => return Err(invalid_format()),
            }
        }
        if digits.is_empty() || digits.len() > 9 {
            return Err(invalid_format());
        }
        let padded = format!("{digits:0>9}");
        if padded.bytes().all(|b| b == b'0') {
            return Err(invalid_format());
        }
        if !is_valid_israeli_id(&padded) {
            return Err(FieldProblem::new(
                "check_digit_failed",
                "The check digit of this number is wrong; please check it for a typo.",
                "ספרת הביקורת של המספר שגויה; נא לבדוק שאין טעות הקלדה.",
            ));
        }
        Ok(CorporateNumber(padded))
    }

    /// The 9 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn invalid_format() -> FieldProblem {
    FieldProblem::new(
        "invalid_corporate_number",
        "Enter a company or ID number of up to 9 digits.",
        "יש להזין מספר חברה או תעודת זהות של עד 9 ספרות.",
    )
}

impl AsRef<str> for CorporateNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CorporateNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CorporateNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CorporateNumber({})", self.0)
    }
}

impl TryFrom<String> for CorporateNumber {
    type Error = FieldProblem;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        CorporateNumber::parse(&value)
    }
}

impl From<CorporateNumber> for String {
    fn from(value: CorporateNumber) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An independent statement of the rule, digit by digit, to check the production code
    /// against in property tests.
    fn reference_valid(nine: &[u8; 9]) -> bool {
        let mut sum = 0;
        for (i, d) in nine.iter().enumerate() {
            let p = u32::from(*d) * if i % 2 == 0 { 1 } else { 2 };
            sum += p / 10 + p % 10;
        }
        sum % 10 == 0
    }

    #[test]
    fn known_valid_numbers_pass() {
        // 123456782: the example of providers.md §5. 1+4+3+8+5+3+7+7+2 = 40.
        // 515555555: the company number of design.md §8. 5+2+5+1+5+1+5+1+5 = 30.
        // 18 (and its padded form 000000018): 1·2 + 8·1 = 10.
        for valid in ["123456782", "515555555", "18", "000000018"] {
            assert!(is_valid_israeli_id(valid), "{valid}");
        }
    }

    #[test]
    fn known_invalid_numbers_fail() {
        // 123456789 sums to 47; 515555556 to 31; non-digits, empty and 10 digits are refused.
        for invalid in [
            "123456789",
            "515555556",
            "",
            "12345678a",
            "1234567820",
            "12345678 ",
        ] {
            assert!(!is_valid_israeli_id(invalid), "{invalid:?}");
        }
    }

    #[test]
    fn the_products_above_nine_have_nine_subtracted() {
        // 000000059: 5·2 = 10 → 1, plus 9 = 10 ✓. Without the subtraction the sum would be 19.
        assert!(is_valid_israeli_id("000000059"));
        // 000000068: 6·2 = 12 → 3, plus 8 = 11 ✗, but 12 + 8 = 20 would wrongly pass.
        assert!(!is_valid_israeli_id("000000068"));
    }

    #[test]
    fn the_check_digit_completes_a_prefix() {
        assert_eq!(israeli_id_check_digit("12345678"), Some(2));
        assert_eq!(israeli_id_check_digit("51555555"), Some(5));
        assert_eq!(israeli_id_check_digit("1"), Some(8));
        assert_eq!(israeli_id_check_digit("123456789"), None);
        assert_eq!(israeli_id_check_digit("1a"), None);
    }

    #[test]
    fn corporate_number_accepts_spaces_dashes_and_short_forms() {
        for (input, expected) in [
            ("515555555", "515555555"),
            ("51-555555-5", "515555555"),
            (" 51 555 5555 ", "515555555"),
            ("18", "000000018"),
            ("\u{200F}123456782\u{200E}", "123456782"),
        ] {
            assert_eq!(
                CorporateNumber::parse(input).unwrap().as_str(),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn corporate_number_refuses_bad_input_with_a_code() {
        for (input, code) in [
            ("", "required"),
            ("   ", "required"),
            ("51555555a", "invalid_corporate_number"),
            ("5155555555", "invalid_corporate_number"),
            ("--", "invalid_corporate_number"),
            ("000000000", "invalid_corporate_number"),
            ("51.555.5555", "invalid_corporate_number"),
            ("515555556", "check_digit_failed"),
        ] {
            assert_eq!(
                CorporateNumber::parse(input).unwrap_err().code,
                code,
                "{input:?}"
            );
        }
    }

    #[test]
    fn corporate_number_round_trips_through_serde() {
        let n = CorporateNumber::parse("51-555555-5").unwrap();
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, "\"515555555\"");
        assert_eq!(serde_json::from_str::<CorporateNumber>(&json).unwrap(), n);
        assert!(serde_json::from_str::<CorporateNumber>("\"515555556\"").is_err());
    }

    proptest! {
        #[test]
        fn exactly_one_check_digit_completes_any_eight_digit_prefix(prefix in "[0-9]{8}") {
            let valid: Vec<u8> = (0..=9u8)
                .filter(|d| is_valid_israeli_id(&format!("{prefix}{d}")))
                .collect();
            prop_assert_eq!(valid.len(), 1);
            prop_assert_eq!(Some(valid[0]), israeli_id_check_digit(&prefix));
        }

        #[test]
        fn the_rule_matches_an_independent_reference(digits in proptest::array::uniform9(0u8..10)) {
            let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            prop_assert_eq!(is_valid_israeli_id(&text), reference_valid(&digits));
        }

        #[test]
        fn left_padding_does_not_change_validity(digits in "[0-9]{1,9}") {
            prop_assert_eq!(
                is_valid_israeli_id(&digits),
                is_valid_israeli_id(&format!("{digits:0>9}"))
            );
        }

        #[test]
        fn any_single_digit_change_is_detected(prefix in "[0-9]{8}", position in 0usize..9, delta in 1u8..10) {
            let check = israeli_id_check_digit(&prefix).unwrap();
            let mut digits: Vec<u8> = format!("{prefix}{check}").into_bytes();
            digits[position] = b'0' + (digits[position] - b'0' + delta) % 10;
            prop_assert!(!is_valid_israeli_id(std::str::from_utf8(&digits).unwrap()));
        }
    }
}
