//! Detection of raw payment-card numbers in request bodies, so that they are refused at the edge
//! and never reach the engine, its database or its logs (design.md §6): the marketplace must
//! send a provider single-use token instead.
//!
//! A card number here is 13 to 19 digits, the first not 0, passing the Luhn check, as a JSON
//! number or inside a string, where its digit groups may be separated by single spaces or dashes
//! (`4580 4580 4580 4580`, `4580-4580-4580-4580`). Israeli ID and bank account numbers (at most
//! 9 digits) and phone numbers (at most 12) are too short to match.
//!
//! Identifiers are not card numbers, even when some of their digits would pass: a string that is
//! a UUID is skipped, a run of digit groups shaped like a UUID (`8-4-4-4-12` digits joined by
//! dashes) is skipped inside text, and a run of digit groups glued at either end to a letter or
//! digit, directly or across one dash (`abcdefab-1111-2222-3333-…`, `order4580…`), is part of a
//! larger token, not a number a person typed. The price of that rule: a card number written
//! glued to a word (`card4580…`, `ref-4580…`) is not recognised. One in ten random digit strings passes Luhn, so without these rules a random
//! UUID whose dash groups happen to be all digits, or the nil UUID, would be refused.

use serde_json::Value;
use uuid::Uuid;

use crate::errors::FieldProblem;

/// The JSON paths (`vendor.notes`, `items[2].sku`) of every string or number anywhere in
/// `value` that contains a card number, in document order. The root itself, if it is one,
/// has the path `""`.
pub fn find_card_numbers(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    find_under(value, "", &mut found);
    found
}

/// Like [`find_card_numbers`], with every path under `prefix`.
///
/// This recurses once per nesting level; bodies come from `serde_json`, whose parser refuses
/// more than 128 levels, so the depth is bounded.
pub(crate) fn find_under(value: &Value, prefix: &str, found: &mut Vec<String>) {
    match value {
        Value::String(text) => {
            if text_contains_card_number(text) {
                found.push(prefix.to_owned());
            }
        }
        Value::Number(number) => {
            if number_is_card_number(number) {
                found.push(prefix.to_owned());
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_under(item, &format!("{prefix}[{i}]"), found);
            }
        }
        Value::Object(members) => {
            for (key, member) in members {
                find_under(member, &join_path(prefix, key), found);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// `prefix.key`, or `key` at the root.
pub(crate) fn join_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The error reported at the path of a card number.
pub fn card_number_refused() -> FieldProblem {
    FieldProblem::new(
        "card_number_refused",
        "Card numbers must never be sent to this API. Collect the card with the payment \
         provider's form and send its single-use token instead.",
        "אסור לשלוח מספרי כרטיסי אשראי ל-API זה. יש לקלוט את הכרטיס בטופס של ספק התשלומים \
         ולשלוח במקומו את האסימון החד-פעמי (token) שהוא מחזיר.",
    )
}

fn number_is_card_number(number: &serde_json::Number) -> bool {
    let digits = if let Some(n) = number.as_u64() {
        n.to_string()
    } else if let Some(n) = number.as_i64() {
        n.unsigned_abs().to_string()
    } else if let Some(f) = number.as_f64() {
        // A card number sent as a float (`4580458045804580.0`) is still a card number; only
        // whole values in range can be one.
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e19 {
            format!("{:.0}", f.abs())
        } else {
            return false;
        }
    } else {
        return false;
    };
    is_card_number(&digits)
}

/// Whether any run of digit groups in `text` (groups joined by one space or dash) has a
/// contiguous stretch of whole groups that is a card number. A `text` that is a UUID has none;
/// runs shaped like a UUID, and runs glued to a letter or digit at either end, are skipped.
fn text_contains_card_number(text: &str) -> bool {
    if Uuid::try_parse(text.trim()).is_ok() {
        return false;
    }
    digit_runs(text)
        .iter()
        .filter(|run| run.stands_alone && !run.is_uuid_shaped())
        .any(|run| run.has_card_number())
}

/// A maximal run of ASCII digit groups joined by single spaces or dashes.
#[derive(Debug, Default)]
struct DigitRun<'a> {
    groups: Vec<&'a str>,
    /// The separators between the groups, one fewer than the groups.
    separators: Vec<u8>,
    /// Neither end is glued to a letter or digit (of any script), directly or across one dash:
    /// the run is not part of a larger token.
    stands_alone: bool,
}

impl DigitRun<'_> {
    /// Eight, four, four, four and twelve digits joined by dashes: the hyphenated form of a UUID
    /// whose groups are all digits. Nobody types a card number that way.
    fn is_uuid_shaped(&self) -> bool {
        let lengths: Vec<usize> = self.groups.iter().map(|group| group.len()).collect();
        lengths == [8, 4, 4, 4, 12] && self.separators.iter().all(|&sep| sep == b'-')
    }

    /// Whether a contiguous stretch of whole groups is a card number.
    fn has_card_number(&self) -> bool {
        (0..self.groups.len()).any(|start| {
            let mut digits = String::new();
            for group in &self.groups[start..] {
                digits.push_str(group);
                if digits.len() > 19 {
                    return false;
                }
                if is_card_number(&digits) {
                    return true;
                }
            }
            false
        })
    }
}

/// Whether the characters next to one end of a run of digit groups (walking away from it) glue
/// it to a larger token: a letter or digit right there, or a dash and then a letter or digit
/// (`abcdefab-1111-…`: the groups of a hex identifier are joined by dashes).
fn glued(mut outward: impl Iterator<Item = char>) -> bool {
    match outward.next() {
        Some('-') => outward.next().is_some_and(char::is_alphanumeric),
        Some(c) => c.is_alphanumeric(),
        None => false,
    }
}

/// Splits `text` into its runs of digit groups, in order.
fn digit_runs(text: &str) -> Vec<DigitRun<'_>> {
    let mut runs = Vec::new();
    let mut run = DigitRun::default();
    let mut run_start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        if run.groups.is_empty() {
            run_start = i;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        run.groups.push(&text[start..i]);
        // One separator followed by a digit continues the run.
        let continues =
            i + 1 < bytes.len() && matches!(bytes[i], b' ' | b'-') && bytes[i + 1].is_ascii_digit();
        if continues {
            run.separators.push(bytes[i]);
            i += 1;
        } else {
            // `run_start` and `i` are at ASCII bytes (a digit, and the byte after the last
            // digit), so both are character boundaries.
            run.stands_alone = !glued(text[..run_start].chars().rev()) && !glued(text[i..].chars());
            runs.push(std::mem::take(&mut run));
        }
    }
    runs
}

/// 13 to 19 ASCII digits passing the Luhn check, whose first digit (the major industry
/// identifier of ISO/IEC 7812) is 1 to 9: no payment card starts with 0, and a run of zeros (or
/// an id padded with them) passes Luhn without being anyone's card.
fn is_card_number(digits: &str) -> bool {
    (13..=19).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
        && luhn(digits)
}

/// The Luhn check: from the right, every second digit is doubled (minus 9 above 9), and the
/// sum must be divisible by 10.
fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn card_numbers_are_found_at_any_depth_in_strings_and_numbers() {
        let body = json!({
            "vendor": {
                "legal_name": "Dana",
                "notes": "card 4580 4580 4580 4580 exp 12/27",
                "card": 4580458045804580u64,
                "extra": [{"x": "4111-1111-1111-1111"}, "4111111111111111"],
                "float": 4580458045804580.0,
            }
        });
        assert_eq!(
            find_card_numbers(&body),
            vec![
                "vendor.card",
                "vendor.extra[0].x",
                "vendor.extra[1]",
                "vendor.float",
                "vendor.notes",
            ]
        );
    }

    #[test]
    fn well_known_test_cards_of_every_length_are_found() {
        for card in [
            "4222222222222",       // Visa, 13 digits
            "378282246310005",     // Amex, 15
            "5555555555554444",    // Mastercard, 16
            "6011111111111117",    // Discover, 16
            "4000000000000000006", // 19 digits
            "3530 1113 3330 0000", // JCB with spaces
        ] {
            assert_eq!(find_card_numbers(&json!(card)), vec![""], "{card}");
        }
    }

    #[test]
    fn only_luhn_valid_numbers_are_flagged() {
        // 4580458045804581 fails Luhn; so does the 13-digit 4222222222223.
        for not_card in ["4580458045804581", "4222222222223", "4580 4580 4580 4581"] {
            assert!(find_card_numbers(&json!(not_card)).is_empty(), "{not_card}");
        }
    }

    #[test]
    fn a_13_digit_phone_like_string_is_flagged_only_when_luhn_passes() {
        // "+972 5212 345 678" has 13 digits; 9725212345678 fails Luhn (sum 53), and
        // 9725212345675 passes (sum 50).
        assert!(find_card_numbers(&json!("+972 5212 345 678")).is_empty());
        assert_eq!(
            find_card_numbers(&json!({"phone": "+972 5212 345 675"})),
            vec!["phone"]
        );
    }

    #[test]
    fn ids_accounts_phones_and_ordinary_numbers_never_match() {
        let body = json!({
            "corporate_number": "515555555",
            "id": 123456782,
            "account": "041116",
            "phone": "+972 52 123 4567",
            "phone2": "972521234567",
            "amount": 4580.45,
            "big": 1e300,
            "negative": -5,
            "long_reference": "45804580458045804580458045", // 26 digits, one group
            "date": "2025-01-01",
        });
        assert!(find_card_numbers(&body).is_empty());
    }

    #[test]
    fn digit_runs_starting_with_zero_are_not_cards() {
        // Luhn-valid, but no card's first digit is 0.
        assert!(luhn("0000000000000"));
        assert!(find_card_numbers(&json!({"external_id": "0000000000000"})).is_empty());
        assert!(find_card_numbers(&json!({"reference": "0004222222222222"})).is_empty());
        assert_eq!(
            find_card_numbers(&json!({"reference": "4222222222222"})),
            vec!["reference".to_owned()]
        );
    }

    #[test]
    fn lengths_outside_13_to_19_digits_are_ignored() {
        // 12 digits and 20 digits, both Luhn-valid.
        assert!(!is_card_number("424242424242"));
        assert!(luhn("424242424242"));
        assert!(!is_card_number("42424242424242424242"));
        assert!(luhn("42424242424242424242"));
    }

    #[test]
    fn a_card_next_to_other_numbers_is_still_found() {
        assert_eq!(
            find_card_numbers(&json!("call 0521234567 4580 4580 4580 4580 thanks")),
            vec![""]
        );
        // Two separators in a row end a run: "4580  4580…" is two runs of at most 12 digits.
        assert!(find_card_numbers(&json!("4580  4580 4580 4580")).is_empty());
    }

    #[test]
    fn uuids_are_not_card_numbers() {
        // Each of these was flagged before UUIDs were told apart: the nil UUID's zeros pass
        // Luhn, `80960213-6648-0783-…` has all-digit groups whose first 16 digits pass, and
        // `61287386-6165-4c2a-…` has a 13-digit stretch `61287386 6165 4` that passes.
        for uuid in [
            "00000000-0000-0000-0000-000000000000",
            "80960213-6648-0783-0683-977905863653",
            "61287386-6165-4c2a-b53a-ef511f8ffec2",
            "3f2a9c1e-7d4a-2869-2499-751048221230",
            "{80960213-6648-0783-0683-977905863653}",
            "urn:uuid:00000000-0000-0000-0000-000000000000",
            " 80960213-6648-0783-0683-977905863653 ",
        ] {
            assert!(find_card_numbers(&json!(uuid)).is_empty(), "{uuid}");
        }
        let body = json!({"vendor_id": uuid::Uuid::nil(), "run": uuid::Uuid::nil().to_string()});
        assert!(find_card_numbers(&body).is_empty());
    }

    #[test]
    fn uuids_inside_text_are_not_card_numbers() {
        for text in [
            // All-digit groups shaped 8-4-4-4-12 with dashes.
            "run 80960213-6648-0783-0683-977905863653 is stuck",
            "runs 00000000-0000-0000-0000-000000000000, 80960213-6648-0783-0683-977905863653",
            // Digit groups glued by dashes to hex groups: `7601 8955 5979 7114` would pass, but
            // it is the tail of one token.
            "see 3f2a9c1e-7d4a-2869-2499-751048221230 please",
            "see 61287386-6165-4c2a-b53a-ef511f8ffec2 please",
            "key=3f2a9c1e-7d41-6252-7601-895559797114;",
        ] {
            assert!(find_card_numbers(&json!(text)).is_empty(), "{text}");
        }
    }

    #[test]
    fn card_numbers_typed_in_text_are_still_found_next_to_punctuation() {
        for text in [
            "card 4580 4580 4580 4580 exp 12/27",
            "card: 4580-4580-4580-4580.",
            "(4111111111111111)",
            "כרטיס 4580458045804580 תוקף 12/27",
            "4580 4580 4580 4580\nthanks",
            "#4580-4580-4580-4580",
        ] {
            assert_eq!(find_card_numbers(&json!(text)), vec![""], "{text}");
        }
        // Separated from a UUID by a space, a card is still a card.
        assert_eq!(
            find_card_numbers(&json!(
                "00000000-0000-0000-0000-000000000000 4580 4580 4580 4580"
            )),
            vec![""]
        );
    }

    #[test]
    fn a_card_number_glued_to_a_word_is_taken_for_part_of_a_token() {
        // The documented price of not refusing identifiers: these are not recognised.
        for text in [
            "order4580458045804580",
            "4580458045804580x",
            "ref-4580-4580-4580-4580",
        ] {
            assert!(find_card_numbers(&json!(text)).is_empty(), "{text}");
        }
    }

    proptest! {
        #[test]
        fn any_luhn_valid_16_digit_number_is_found_however_grouped(
            body in "[1-9][0-9]{14}",
            sep in prop::sample::select(vec!["", " ", "-"]),
        ) {
            let check = (0..10u8).find(|d| luhn(&format!("{body}{d}"))).unwrap();
            let card = format!("{body}{check}");
            let grouped: Vec<&str> = (0..4).map(|i| &card[i * 4..i * 4 + 4]).collect();
            let text = grouped.join(sep);
            prop_assert_eq!(find_card_numbers(&json!({"a": [text]})), vec!["a[0]".to_owned()]);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,60}") {
            let _ = find_card_numbers(&json!(text));
        }
    }
}
