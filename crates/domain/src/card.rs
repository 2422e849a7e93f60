//! Detection of raw payment-card numbers in request bodies, so that they are refused at the edge
//! and never reach the engine, its database or its logs (design.md §6): the marketplace must
//! send a provider single-use token instead.
//!
//! A card number here is 13 to 19 digits passing the Luhn check, as a JSON number or inside a
//! string, where its digit groups may be separated by single spaces or dashes
//! (`4580 4580 4580 4580`, `4580-4580-4580-4580`). Israeli ID and bank account numbers (at most
//! 9 digits) and phone numbers (at most 12) are too short to match.

use serde_json::Value;

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
/// contiguous stretch of whole groups that is a card number.
fn text_contains_card_number(text: &str) -> bool {
    let mut runs: Vec<Vec<&str>> = Vec::new();
    let mut groups: Vec<&str> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            groups.push(&text[start..i]);
            // One separator followed by a digit continues the run.
            let continues = i + 1 < bytes.len()
                && matches!(bytes[i], b' ' | b'-')
                && bytes[i + 1].is_ascii_digit();
            if continues {
                i += 1;
            } else {
                runs.push(std::mem::take(&mut groups));
            }
        } else {
            i += 1;
        }
    }
    runs.iter().any(|groups| {
        (0..groups.len()).any(|start| {
            let mut digits = String::new();
            for group in &groups[start..] {
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
    })
}

/// 13 to 19 ASCII digits passing the Luhn check.
fn is_card_number(digits: &str) -> bool {
    (13..=19).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && luhn(digits)
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

    proptest! {
        #[test]
        fn any_luhn_valid_16_digit_number_is_found_however_grouped(
            body in "[0-9]{15}",
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
