//! Money in agorot (1/100 of a shekel), as an integer. No float ever holds an amount: floats
//! cannot represent 0.10 exactly, and a ledger that drifts by an agora does not reconcile.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::errors::FieldProblem;

/// An amount in agorot; negative for credits and refunds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Agorot(i64);

impl Agorot {
    pub const ZERO: Agorot = Agorot(0);

    pub const fn new(agorot: i64) -> Self {
        Agorot(agorot)
    }

    /// The amount in agorot.
    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn checked_add(self, other: Agorot) -> Option<Agorot> {
        self.0.checked_add(other.0).map(Agorot)
    }

    pub fn checked_sub(self, other: Agorot) -> Option<Agorot> {
        self.0.checked_sub(other.0).map(Agorot)
    }

    /// Multiplies by a whole quantity, e.g. a unit price by the number of units.
    pub fn checked_mul(self, quantity: i64) -> Option<Agorot> {
        self.0.checked_mul(quantity).map(Agorot)
    }

    pub fn checked_neg(self) -> Option<Agorot> {
        self.0.checked_neg().map(Agorot)
    }

    /// Parses a decimal amount of shekels: `12`, `12.5`, `12.50`, `-3.05`, `0.07`.
    ///
    /// At most two decimals (a third would be a fraction of an agora), digits on both sides of
    /// the point, an optional leading `-`, and nothing else: no `+`, no thousands separators,
    /// no exponent, no surrounding spaces. Provider JSON amounts such as `100.0` parse too.
    pub fn from_shekels_str(input: &str) -> Result<Agorot, FieldProblem> {
        let (negative, unsigned) = match input.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, input),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let has_point = unsigned.contains('.');
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !all_digits(whole)
            || !all_digits(fraction)
            || (has_point && fraction.is_empty())
        {
            return Err(invalid_amount());
        }
        if fraction.len() > 2 {
            return Err(FieldProblem::new(
                "invalid_amount",
                "An amount can have at most two decimals (agorot).",
                "סכום יכול לכלול לכל היותר שתי ספרות אחרי הנקודה (אגורות).",
            ));
        }
        // The magnitude is computed in i128 so that i64::MIN, whose magnitude has no i64,
        // still parses.
        let shekels: i128 = whole.parse().map_err(|_| too_large())?;
        let agorot: i128 = format!("{fraction:0<2}")
            .parse()
            .map_err(|_| invalid_amount())?;
        let magnitude = shekels
            .checked_mul(100)
            .and_then(|a| a.checked_add(agorot))
            .ok_or_else(too_large)?;
        let signed = if negative { -magnitude } else { magnitude };
        i64::try_from(signed).map(Agorot).map_err(|_| too_large())
    }

    /// The amount in shekels with exactly two decimals and no currency sign, as provider APIs
    /// expect it: `12.50`, `-0.05`.
    pub fn to_decimal_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", magnitude / 100, magnitude % 100)
    }
}

fn invalid_amount() -> FieldProblem {
    FieldProblem::new(
        "invalid_amount",
        "Enter an amount in shekels, e.g. 12.50.",
        "יש להזין סכום בשקלים, למשל 12.50.",
    )
}

fn too_large() -> FieldProblem {
    FieldProblem::new(
        "amount_too_large",
        "The amount is too large.",
        "הסכום גדול מדי.",
    )
}

/// `₪12.50`, `-₪0.05`.
impl fmt::Display for Agorot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimal = self.to_decimal_string();
        match decimal.strip_prefix('-') {
            Some(magnitude) => write!(f, "-₪{magnitude}"),
            None => write!(f, "₪{decimal}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shekel_strings_parse_to_agorot() {
        for (input, agorot) in [
            ("12.50", 1250),
            ("12.5", 1250),
            ("12", 1200),
            ("0.07", 7),
            ("0", 0),
            ("-3.05", -305),
            ("-0.5", -50),
            ("100.0", 10000),
            ("007.10", 710),
            ("92233720368547758.07", i64::MAX),
            ("-92233720368547758.08", i64::MIN),
        ] {
            assert_eq!(
                Agorot::from_shekels_str(input),
                Ok(Agorot::new(agorot)),
                "{input}"
            );
        }
    }

    #[test]
    fn malformed_amounts_are_refused() {
        for (input, code) in [
            ("", "invalid_amount"),
            ("12.505", "invalid_amount"),
            ("12.", "invalid_amount"),
            (".5", "invalid_amount"),
            ("+12", "invalid_amount"),
            ("1,000", "invalid_amount"),
            ("1e3", "invalid_amount"),
            (" 12", "invalid_amount"),
            ("12.5.0", "invalid_amount"),
            ("--1", "invalid_amount"),
            ("-", "invalid_amount"),
            ("₪12", "invalid_amount"),
            ("92233720368547758.08", "amount_too_large"),
            ("99999999999999999999", "amount_too_large"),
        ] {
            assert_eq!(
                Agorot::from_shekels_str(input).map_err(|e| e.code),
                Err(code),
                "{input:?}"
            );
        }
    }

    #[test]
    fn display_and_decimal_string_show_two_decimals() {
        assert_eq!(Agorot::new(1250).to_string(), "₪12.50");
        assert_eq!(Agorot::new(-5).to_string(), "-₪0.05");
        assert_eq!(Agorot::new(1250).to_decimal_string(), "12.50");
        assert_eq!(Agorot::new(-305).to_decimal_string(), "-3.05");
        assert_eq!(
            Agorot::new(i64::MIN).to_decimal_string(),
            "-92233720368547758.08"
        );
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Agorot::new(1250);
        assert_eq!(a.checked_add(Agorot::new(50)), Some(Agorot::new(1300)));
        assert_eq!(a.checked_sub(Agorot::new(1300)), Some(Agorot::new(-50)));
        assert_eq!(a.checked_mul(3), Some(Agorot::new(3750)));
        assert_eq!(Agorot::new(i64::MAX).checked_add(Agorot::new(1)), None);
        assert_eq!(Agorot::new(i64::MIN).checked_sub(Agorot::new(1)), None);
        assert_eq!(Agorot::new(i64::MAX).checked_mul(2), None);
        assert_eq!(Agorot::new(i64::MIN).checked_neg(), None);
    }

    #[test]
    fn agorot_serialize_as_an_integer() {
        assert_eq!(serde_json::to_string(&Agorot::new(1250)).unwrap(), "1250");
        assert_eq!(
            serde_json::from_str::<Agorot>("-7").unwrap(),
            Agorot::new(-7)
        );
    }

    proptest! {
        #[test]
        fn the_decimal_string_parses_back(agorot in any::<i64>()) {
            let amount = Agorot::new(agorot);
            prop_assert_eq!(Agorot::from_shekels_str(&amount.to_decimal_string()), Ok(amount));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(input in "\\PC{0,30}") {
            let _ = Agorot::from_shekels_str(&input);
        }
    }
}
