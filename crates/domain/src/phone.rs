//! Israeli phone numbers, normalised to E.164 (`+972…`).
//!
//! The national significant number (NSN, the number without its trunk `0`) must be one of
//! (providers.md §5, after libphonenumber's IL metadata):
//! - mobile: 9 digits starting with 5 (`05X-XXXXXXX`);
//! - fixed line: 8 digits starting with 2, 3, 4, 8 or 9 (`0X-XXXXXXX`);
//! - VoIP: 9 digits starting with 7 (`07X-XXXXXXX`).
//!
//! Everything else is refused, deliberately including the 1-800/1-700 toll-free and premium
//! numbers and short codes (`*2020`): a vendor's contact phone must be reachable from abroad and
//! by SMS, and those are not.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::errors::{FieldProblem, strip_bidi_marks};

/// What kind of line a number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneKind {
    Mobile,
    FixedLine,
    Voip,
}

/// An Israeli phone number, held in E.164 form.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a national (`052-123-4567`, `0521234567`, `02-6251111`) or international
    /// (`+972 52 123 4567`, `972521234567`, `00972-52-1234567`, `+972 (0)52 1234567`) number.
    ///
    /// Spaces, dashes, dots, parentheses and invisible bidi marks are ignored; a `+` may only
    /// lead. After the country code a single trunk `0` is tolerated, since `+972 (0)52…` is a
    /// common way of writing it. A number with neither the trunk `0` nor the country code
    /// (`521234567`) is refused as ambiguous.
    pub fn parse(input: &str) -> Result<Self, FieldProblem> {
        let input = strip_bidi_marks(input);
        let input = input.trim();
        if input.is_empty() {
            return Err(FieldProblem::required());
        }
        let (plus, rest) = match input.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, input),
        };
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(invalid()),
            }
            // Nothing valid is this long; stop early on hostile input.
            if digits.len() > 16 {
                return Err(invalid());
            }
        }
        let nsn = if plus {
            digits.strip_prefix("972").ok_or_else(invalid)?
        } else if let Some(rest) = digits.strip_prefix("00972") {
            rest
        } else if let Some(rest) = digits.strip_prefix("972") {
            rest
        } else if let Some(rest) = digits.strip_prefix('0') {
            // A national number; its trunk 0 is gone. A second 0 would be an international
            // prefix to another country (`00…` without 972), which is refused below.
            if rest.starts_with('0') {
                return Err(invalid());
            }
            rest
        } else {
            return Err(invalid());
        };
        // `+972 (0)52…`: one trunk 0 after the country code. (A national number cannot get
        // here with a leading 0: that was refused above.)
        let nsn = nsn.strip_prefix('0').unwrap_or(nsn);
        if kind_of(nsn).is_none() {
            return Err(invalid());
        }
        Ok(PhoneNumber(format!("+972{nsn}")))
    }

    /// `+972521234567`.
    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// The national form with its trunk 0 and no separators: `0521234567`.
    pub fn national(&self) -> String {
        format!("0{}", self.nsn())
    }

    pub fn kind(&self) -> PhoneKind {
        kind_of(self.nsn()).expect("a parsed number has a kind")
    }

    fn nsn(&self) -> &str {
        &self.0["+972".len()..]
    }
}

fn kind_of(nsn: &str) -> Option<PhoneKind> {
    let first = nsn.bytes().next()?;
    match (first, nsn.len()) {
        (b'5', 9) => Some(PhoneKind::Mobile),
        (b'2' | b'3' | b'4' | b'8' | b'9', 8) => Some(PhoneKind::FixedLine),
        (b'7', 9) => Some(PhoneKind::Voip),
        _ => None,
    }
}

fn invalid() -> FieldProblem {
    FieldProblem::new(
        "invalid_phone",
        "Enter an Israeli phone number, e.g. 052-123-4567 or +972 52 123 4567.",
        "יש להזין מספר טלפון ישראלי, למשל 052-123-4567 או ‎+972 52 123 4567.",
    )
}

impl AsRef<str> for PhoneNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = FieldProblem;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        PhoneNumber::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepted_forms_normalise_to_e164() {
        for (input, e164, kind) in [
            ("052-123-4567", "+972521234567", PhoneKind::Mobile),
            ("0521234567", "+972521234567", PhoneKind::Mobile),
            ("+972 52 123 4567", "+972521234567", PhoneKind::Mobile),
            ("972521234567", "+972521234567", PhoneKind::Mobile),
            ("+972-52-1234567", "+972521234567", PhoneKind::Mobile),
            ("00972 52 1234567", "+972521234567", PhoneKind::Mobile),
            ("+972 (0)52 123 4567", "+972521234567", PhoneKind::Mobile),
            ("(052) 123.4567", "+972521234567", PhoneKind::Mobile),
            (
                "\u{200F}052-1234567\u{200E}",
                "+972521234567",
                PhoneKind::Mobile,
            ),
            ("02-6251111", "+97226251111", PhoneKind::FixedLine),
            ("03 1234567", "+97231234567", PhoneKind::FixedLine),
            ("04-1234567", "+97241234567", PhoneKind::FixedLine),
            ("08-1234567", "+97281234567", PhoneKind::FixedLine),
            ("09-1234567", "+97291234567", PhoneKind::FixedLine),
            ("+97226251111", "+97226251111", PhoneKind::FixedLine),
            ("077-1234567", "+972771234567", PhoneKind::Voip),
            ("072 123 4567", "+972721234567", PhoneKind::Voip),
        ] {
            let phone = PhoneNumber::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(phone.as_e164(), e164, "{input:?}");
            assert_eq!(phone.kind(), kind, "{input:?}");
        }
    }

    #[test]
    fn the_national_form_keeps_the_trunk_zero() {
        assert_eq!(
            PhoneNumber::parse("+972 52 123 4567").unwrap().national(),
            "0521234567"
        );
        assert_eq!(
            PhoneNumber::parse("02-6251111").unwrap().national(),
            "026251111"
        );
    }

    #[test]
    fn everything_else_is_refused() {
        for (input, code) in [
            ("", "required"),
            ("  ", "required"),
            ("052-123-456", "invalid_phone"), // mobile one digit short
            ("052-123-45678", "invalid_phone"), // mobile one digit long
            ("02-625111", "invalid_phone"),   // fixed line one digit short
            ("02-62511111", "invalid_phone"), // fixed line one digit long
            ("077-123456", "invalid_phone"),  // VoIP one digit short
            ("01-2345678", "invalid_phone"),  // no area code 1
            ("05-1234567", "invalid_phone"),  // 8-digit number starting with 5
            ("06-1234567", "invalid_phone"),  // no area code 6
            ("1-800-123-456", "invalid_phone"), // toll-free: documented refusal
            ("1-700-123-456", "invalid_phone"), // premium rate
            ("*2020", "invalid_phone"),       // short code
            ("521234567", "invalid_phone"),   // neither trunk 0 nor country code
            ("+1 212 555 1234", "invalid_phone"), // another country
            ("+44 20 7946 0958", "invalid_phone"),
            ("0044 20 7946 0958", "invalid_phone"), // international prefix to another country
            ("052-123-456a", "invalid_phone"),      // letters
            ("052+1234567", "invalid_phone"),       // + not leading
            ("++972521234567", "invalid_phone"),
            ("+972 00 52 1234567", "invalid_phone"), // two trunk zeros
            ("0521234567891234567891", "invalid_phone"),
            ("٠٥٢١٢٣٤٥٦٧", "invalid_phone"), // Arabic-Indic digits
        ] {
            assert_eq!(
                PhoneNumber::parse(input).map_err(|e| e.code),
                Err(code),
                "{input:?}"
            );
        }
    }

    #[test]
    fn phone_round_trips_through_serde_as_e164() {
        let phone = PhoneNumber::parse("052-123-4567").unwrap();
        assert_eq!(serde_json::to_string(&phone).unwrap(), "\"+972521234567\"");
        assert_eq!(
            serde_json::from_str::<PhoneNumber>("\"+972521234567\"").unwrap(),
            phone
        );
        assert!(serde_json::from_str::<PhoneNumber>("\"+1 212 555 1234\"").is_err());
    }

    /// Any valid national significant number.
    fn nsn() -> impl Strategy<Value = String> {
        prop_oneof!["5[0-9]{8}", "[23489][0-9]{7}", "7[0-9]{8}",]
    }

    /// Writes `digits` in groups separated by `sep`, split at the given cut points.
    fn grouped(digits: &str, cuts: &[usize], sep: &str) -> String {
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && cuts.contains(&i) {
                out.push_str(sep);
            }
            out.push(c);
        }
        out
    }

    proptest! {
        #[test]
        fn every_accepted_format_of_a_number_gives_the_same_e164(
            nsn in nsn(),
            cuts in proptest::collection::vec(1usize..9, 0..4),
            sep in prop::sample::select(vec!["", " ", "-", ".", " - "]),
        ) {
            let e164 = format!("+972{nsn}");
            let area_len = if nsn.starts_with('5') || nsn.starts_with('7') { 2 } else { 1 };
            let forms = [
                format!("0{}", grouped(&nsn, &cuts, sep)),
                format!("(0{}) {}", &nsn[..area_len], &nsn[area_len..]),
                format!("+972{sep}{}", grouped(&nsn, &cuts, sep)),
                format!("972{}", nsn),
                format!("00972 {}", grouped(&nsn, &cuts, sep)),
                format!("+972 (0){}", grouped(&nsn, &cuts, sep)),
                format!(" \u{200F}0{nsn} "),
            ];
            for form in forms {
                let phone = PhoneNumber::parse(&form);
                prop_assert!(phone.is_ok(), "{:?} refused", form);
                let phone = phone.unwrap();
                prop_assert_eq!(phone.as_e164(), e164.as_str());
                prop_assert_eq!(phone.national(), format!("0{nsn}"));
                prop_assert_eq!(PhoneNumber::parse(&phone.national()).unwrap(), phone.clone());
                prop_assert_eq!(PhoneNumber::parse(phone.as_e164()).unwrap(), phone);
            }
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(input in "\\PC{0,40}") {
            let _ = PhoneNumber::parse(&input);
        }

        #[test]
        fn numbers_of_a_wrong_length_are_refused(nsn in nsn(), extra in "[0-9]") {
            let longer = format!("0{nsn}{extra}");
            prop_assert!(PhoneNumber::parse(&longer).is_err());
            let shorter = format!("0{}", &nsn[..nsn.len() - 1]);
            prop_assert!(PhoneNumber::parse(&shorter).is_err());
        }
    }
}
