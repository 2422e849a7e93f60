//! Defensive reading of SUMIT answers, and exact money on the wire.
//!
//! Where the reference marks a shape as uncertain the client accepts every plausible form:
//! `Status` as an integer or an enum name, booleans as strings, numbers as numeric strings, and
//! property names in any case. This is written independently of the sandbox's reader on
//! purpose: two readings of the same wire format catch each other's mistakes.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use domain::money::Agorot;
use serde_json::Value;

/// A property looked up without regard to case; `null` counts as absent.
pub(crate) fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    obj.get(name)
        .or_else(|| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, x)| x)
        })
        .filter(|x| !x.is_null())
}

pub(crate) fn string(v: &Value, name: &str) -> Option<String> {
    match field(v, name)? {
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn integer(v: &Value, name: &str) -> Option<i64> {
    match field(v, name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(crate) fn boolean(v: &Value, name: &str) -> Option<bool> {
    match field(v, name)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// An amount of shekels as exact agorot. `Err` when present but unreadable.
pub(crate) fn agorot(v: &Value, name: &str) -> Result<Option<i64>, String> {
    let text = match field(v, name) {
        None => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => return Err(format!("{name} is not an amount: {other}")),
    };
    decimal_to_scaled(&text, 2)
        .map(Some)
        .ok_or_else(|| format!("{name} is not an amount: {text}"))
}

/// A date-time in any of the forms .NET emits: with or without fraction and offset.
pub(crate) fn datetime(v: &Value, name: &str) -> Option<NaiveDateTime> {
    let s = string(v, name)?;
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(&s) {
        return Some(dt.naive_local());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(&s, fmt) {
            return Some(dt);
        }
    }
    NaiveDate::parse_from_str(&s, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(NaiveTime::MIN))
}

/// The envelope's `Status`: an integer on the wire (reference §1.2), but Swagger types it as an
/// enum of names, so `"Success"`, `"BusinessError"`, `"TechnicalError"` and `"0"` are accepted.
pub(crate) fn envelope_status(envelope: &Value) -> Option<i64> {
    match field(envelope, "Status")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let s = s.trim();
            s.parse().ok().or(match s.to_ascii_lowercase().as_str() {
                "success" => Some(0),
                "businesserror" => Some(1),
                "technicalerror" => Some(2),
                _ => None,
            })
        }
        _ => None,
    }
}

/// Agorot as the decimal shekel number the API takes: 5782 becomes `57.82`, exactly (the JSON
/// number is written from its decimal text, never computed in floating point).
pub(crate) fn agorot_to_json(agorot: i64) -> Value {
    Agorot::new(agorot)
        .to_decimal_string()
        .parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// Parses `[-]digits[.digits][e[+-]digits]` into an integer scaled by `10^scale`, rounding half
/// away from zero past the scale; `None` for anything else or on overflow.
pub(crate) fn decimal_to_scaled(s: &str, scale: u32) -> Option<i64> {
    let (negative, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_only = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !digits_only(int_part)
        || !digits_only(frac_part)
    {
        return None;
    }
    let all = format!("{int_part}{frac_part}");
    let digits = all.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    // value = digits × 10^(exponent − fraction length); we want value × 10^scale.
    let shift = exponent
        .checked_sub(i32::try_from(frac_part.len()).ok()?)?
        .checked_add(i32::try_from(scale).ok()?)?;
    let magnitude: i128 = if shift >= 0 {
        let base: i128 = digits.parse().ok()?;
        base.checked_mul(10i128.checked_pow(u32::try_from(shift).ok()?)?)?
    } else {
        let cut = usize::try_from(-shift).ok()?;
        if cut > digits.len() {
            let padded = format!("{}{digits}", "0".repeat(cut - digits.len()));
            i128::from(padded.as_bytes()[0] >= b'5')
        } else {
            let (keep, dropped) = digits.split_at(digits.len() - cut);
            let kept: i128 = if keep.is_empty() {
                0
            } else {
                keep.parse().ok()?
            };
            kept + i128::from(dropped.as_bytes()[0] >= b'5')
        }
    };
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_are_read_exactly_from_numbers_and_strings() {
        let v = json!({"A": 57.82, "B": "100.00", "C": 100, "D": -0.01, "E": "x", "F": 0.1});
        assert_eq!(agorot(&v, "A"), Ok(Some(5782)));
        assert_eq!(agorot(&v, "b"), Ok(Some(10000)));
        assert_eq!(agorot(&v, "C"), Ok(Some(10000)));
        assert_eq!(agorot(&v, "D"), Ok(Some(-1)));
        assert!(agorot(&v, "E").is_err());
        assert_eq!(agorot(&v, "F"), Ok(Some(10)));
        assert_eq!(agorot(&v, "missing"), Ok(None));
    }

    #[test]
    fn agorot_are_written_as_exact_shekel_numbers() {
        assert_eq!(agorot_to_json(5782).to_string(), "57.82");
        assert_eq!(agorot_to_json(-5).to_string(), "-0.05");
        assert_eq!(agorot_to_json(10000).to_string(), "100.0");
        for a in [0i64, 1, 10, 99, 101, 4900, 123_456_789_012] {
            let back = decimal_to_scaled(&agorot_to_json(a).to_string(), 2);
            assert_eq!(back, Some(a));
        }
    }

    #[test]
    fn the_status_is_read_as_an_integer_or_an_enum_name() {
        assert_eq!(envelope_status(&json!({"Status": 0})), Some(0));
        assert_eq!(envelope_status(&json!({"Status": "Success"})), Some(0));
        assert_eq!(
            envelope_status(&json!({"status": "BusinessError"})),
            Some(1)
        );
        assert_eq!(envelope_status(&json!({"Status": "2"})), Some(2));
        assert_eq!(envelope_status(&json!({"Status": "Weird"})), None);
        assert_eq!(envelope_status(&json!({"Data": {}})), None);
    }

    #[test]
    fn booleans_and_dates_are_read_in_every_plausible_form() {
        let v = json!({"a": "True", "b": 0, "c": true, "d": "2025-06-09T10:00:00",
                       "e": "2025-06-09T10:00:00.123+03:00", "f": "2025-06-09"});
        assert_eq!(boolean(&v, "a"), Some(true));
        assert_eq!(boolean(&v, "b"), Some(false));
        assert_eq!(boolean(&v, "c"), Some(true));
        assert_eq!(
            datetime(&v, "d").unwrap().to_string(),
            "2025-06-09 10:00:00"
        );
        assert_eq!(
            datetime(&v, "e").unwrap().to_string(),
            "2025-06-09 10:00:00.123"
        );
        assert_eq!(
            datetime(&v, "f").unwrap().to_string(),
            "2025-06-09 00:00:00"
        );
    }
}
