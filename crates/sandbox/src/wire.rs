//! Reading requests the way SUMIT's server reads them, and writing its envelope.
//!
//! The real server is an ASP.NET application whose JSON binder is forgiving: property names are
//! matched without regard to case, booleans may arrive as `"true"`, numbers as numeric strings,
//! and enums as names or integers (reference §1.1). Handlers therefore read the request as a
//! `serde_json::Value` through these accessors instead of deriving strict structs, so that the
//! sandbox accepts exactly what a client may legitimately send.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{Map, Value, json};

use crate::i18n::{Lang, Msg};

/// Why a field could not be read; turned into a `Status: 1` answer naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub(crate) field: String,
    pub(crate) missing: bool,
}

impl FieldError {
    pub(crate) fn invalid(field: &str) -> Self {
        FieldError {
            field: field.to_string(),
            missing: false,
        }
    }

    pub(crate) fn missing(field: &str) -> Self {
        FieldError {
            field: field.to_string(),
            missing: true,
        }
    }

    pub(crate) fn message(&self) -> Msg {
        if self.missing {
            Msg::MissingField(self.field.clone())
        } else {
            Msg::InvalidField(self.field.clone())
        }
    }
}

/// Looks a property up without regard to case, as the real binder does; JSON `null` counts as
/// absent because the binder treats both the same way.
pub(crate) fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    let found = match obj.get(name) {
        Some(x) => Some(x),
        None => obj
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, x)| x),
    };
    found.filter(|x| !x.is_null())
}

/// An object-valued property; a present value of another type is invalid.
pub(crate) fn object<'a>(v: &'a Value, name: &str) -> Result<Option<&'a Value>, FieldError> {
    match field(v, name) {
        None => Ok(None),
        Some(x) if x.is_object() => Ok(Some(x)),
        Some(_) => Err(FieldError::invalid(name)),
    }
}

/// An array-valued property.
pub(crate) fn array<'a>(v: &'a Value, name: &str) -> Result<Option<&'a Vec<Value>>, FieldError> {
    match field(v, name) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(FieldError::invalid(name)),
    }
}

/// A string property; numbers are accepted and rendered as the binder would. Empty strings
/// count as absent, which is how the real forms behave for optional fields.
pub(crate) fn string(v: &Value, name: &str) -> Result<Option<String>, FieldError> {
    match field(v, name) {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(FieldError::invalid(name)),
    }
}

/// A boolean property: JSON booleans, `"true"`/`"false"` in any case, and 0/1 (as numbers or
/// strings), which is what the real server accepts (reference §1.1, S1 sends `"true"`).
pub(crate) fn boolean(v: &Value, name: &str) -> Result<Option<bool>, FieldError> {
    match field(v, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(FieldError::invalid(name)),
        },
        Some(Value::Number(n)) => match n.as_i64() {
            Some(0) => Ok(Some(false)),
            Some(1) => Ok(Some(true)),
            _ => Err(FieldError::invalid(name)),
        },
        Some(_) => Err(FieldError::invalid(name)),
    }
}

/// An integer property, given as a JSON integer or a numeric string.
pub(crate) fn integer(v: &Value, name: &str) -> Result<Option<i64>, FieldError> {
    match field(v, name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(FieldError::invalid(name)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| FieldError::invalid(name)),
        Some(_) => Err(FieldError::invalid(name)),
    }
}

/// An enum property, given as an integer, a numeric string or a member name (any case), the
/// three forms the real server binds (`"DocumentType":"DonationReceipt"`, `"Type":"8"`).
pub(crate) fn enumeration(
    v: &Value,
    name: &str,
    table: &[(&str, i64)],
) -> Result<Option<i64>, FieldError> {
    match field(v, name) {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(x) => enum_value(x, table)
            .map(Some)
            .ok_or(FieldError::invalid(name)),
    }
}

/// One enum value in any of the accepted forms, e.g. an element of `Applications`.
pub(crate) fn enum_value(value: &Value, table: &[(&str, i64)]) -> Option<i64> {
    let known = |n: i64| table.iter().any(|(_, k)| *k == n);
    match value {
        Value::Number(n) => n.as_i64().filter(|n| known(*n)),
        Value::String(s) => {
            let s = s.trim();
            match s.parse::<i64>() {
                Ok(n) => Some(n).filter(|n| known(*n)),
                Err(_) => table
                    .iter()
                    .find(|(label, _)| label.eq_ignore_ascii_case(s))
                    .map(|(_, n)| *n),
            }
        }
        _ => None,
    }
}

/// The first name of an enum value, for display.
pub(crate) fn enum_name(table: &[(&'static str, i64)], value: i64) -> &'static str {
    table
        .iter()
        .find(|(_, n)| *n == value)
        .map(|(label, _)| *label)
        .unwrap_or("Unknown")
}

/// An amount of shekels, read exactly into agorot (see [`decimal_to_scaled`]).
pub(crate) fn money(v: &Value, name: &str) -> Result<Option<i64>, FieldError> {
    scaled(v, name, 2)
}

/// A decimal property scaled by `10^scale` into an integer, exactly.
pub(crate) fn scaled(v: &Value, name: &str, scale: u32) -> Result<Option<i64>, FieldError> {
    match field(v, name) {
        None => Ok(None),
        Some(Value::Number(n)) => decimal_to_scaled(&n.to_string(), scale)
            .map(Some)
            .ok_or(FieldError::invalid(name)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => decimal_to_scaled(s.trim(), scale)
            .map(Some)
            .ok_or(FieldError::invalid(name)),
        Some(_) => Err(FieldError::invalid(name)),
    }
}

/// A date or date-time property. The real server takes .NET date-times; clients send either a
/// bare date (`2025-06-09`) or a local date-time, sometimes with an offset, which the sandbox
/// drops because it keeps all its times in provider-local time.
pub(crate) fn datetime(v: &Value, name: &str) -> Result<Option<NaiveDateTime>, FieldError> {
    let s = match string(v, name)? {
        None => return Ok(None),
        Some(s) => s,
    };
    parse_datetime(&s)
        .map(Some)
        .ok_or(FieldError::invalid(name))
}

pub(crate) fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d.and_time(NaiveTime::MIN));
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.naive_local());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt);
        }
    }
    None
}

/// Parses a decimal written as `[-]digits[.digits][e[+-]digits]` into an integer scaled by
/// `10^scale`, rounding half away from zero past the scale. Floats are never involved, so
/// `57.82` becomes exactly 5782 agorot. Returns `None` for anything else or on overflow.
pub(crate) fn decimal_to_scaled(s: &str, scale: u32) -> Option<i64> {
    let (negative, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // All digits with the decimal point moved by the exponent: value = digits * 10^(point).
    let digits: String = format!("{int_part}{frac_part}");
    let point = exponent.checked_sub(i32::try_from(frac_part.len()).ok()?)?;
    // We want digits * 10^(point + scale), rounded to an integer.
    let shift = point.checked_add(i32::try_from(scale).ok()?)?;
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let magnitude: i128 = if shift >= 0 {
        let base: i128 = digits.parse().ok()?;
        base.checked_mul(10i128.checked_pow(u32::try_from(shift).ok()?)?)?
    } else {
        let cut = usize::try_from(-shift).ok()?;
        if cut > digits.len() {
            // Everything is below the last kept place; only rounding can leave a unit.
            let padded = format!("{}{}", "0".repeat(cut - digits.len()), digits);
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
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).ok()
}

/// Renders agorot as the decimal shekel number the real API returns (`57.82`, `100.0`).
pub(crate) fn agorot_to_json(agorot: i64) -> Value {
    let sign = if agorot < 0 { "-" } else { "" };
    let abs = agorot.unsigned_abs();
    let text = format!("{sign}{}.{:02}", abs / 100, abs % 100);
    text.parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// The SUMIT response envelope: `{Status, UserErrorMessage, TechnicalErrorDetails, Data}`, always
/// sent with HTTP 200 whatever the status (reference §1.2).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Reply {
    pub(crate) status: i64,
    pub(crate) user_message: Option<String>,
    pub(crate) technical: Option<String>,
    pub(crate) data: Value,
}

impl Reply {
    pub(crate) fn ok(data: Value) -> Reply {
        Reply {
            status: 0,
            user_message: None,
            technical: None,
            data,
        }
    }

    /// A business error (`Status: 1`): the request was understood and refused.
    pub(crate) fn business(lang: Lang, msg: Msg) -> Reply {
        Reply {
            status: 1,
            user_message: Some(msg.text(lang)),
            technical: None,
            data: Value::Null,
        }
    }

    /// A technical error (`Status: 2`): the server failed while processing.
    pub(crate) fn technical(lang: Lang, msg: Msg, details: &str) -> Reply {
        Reply {
            status: 2,
            user_message: Some(msg.text(lang)),
            technical: Some(details.to_string()),
            data: Value::Null,
        }
    }

    pub(crate) fn field_error(lang: Lang, e: &FieldError) -> Reply {
        Reply::business(lang, e.message())
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "Status": self.status,
            "UserErrorMessage": self.user_message,
            "TechnicalErrorDetails": self.technical,
            "Data": self.data,
        })
    }
}

/// Builds a JSON object from pairs, skipping nothing: the real API returns `null` for absent
/// values rather than omitting them.
pub(crate) fn obj(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_become_exact_agorot() {
        assert_eq!(decimal_to_scaled("57.82", 2), Some(5782));
        assert_eq!(decimal_to_scaled("100", 2), Some(10000));
        assert_eq!(decimal_to_scaled("100.0", 2), Some(10000));
        assert_eq!(decimal_to_scaled("-0.5", 2), Some(-50));
        assert_eq!(decimal_to_scaled("0.005", 2), Some(1));
        assert_eq!(decimal_to_scaled("0.004", 2), Some(0));
        assert_eq!(decimal_to_scaled("-10.005", 2), Some(-1001));
        assert_eq!(decimal_to_scaled("1e3", 2), Some(100_000));
        assert_eq!(decimal_to_scaled("1.5E-1", 2), Some(15));
        assert_eq!(decimal_to_scaled(".5", 2), Some(50));
        assert_eq!(decimal_to_scaled("1.5", 3), Some(1500));
        assert_eq!(decimal_to_scaled("abc", 2), None);
        assert_eq!(decimal_to_scaled("1.2.3", 2), None);
        assert_eq!(decimal_to_scaled("", 2), None);
        assert_eq!(decimal_to_scaled("1e400", 2), None);
    }

    #[test]
    fn agorot_render_as_shekel_numbers_that_read_back_identically() {
        for agorot in [0, 1, 99, 100, 5782, -5782, 123_456_789] {
            let v = agorot_to_json(agorot);
            let back = decimal_to_scaled(&v.to_string(), 2);
            assert_eq!(back, Some(agorot), "{v}");
        }
        assert_eq!(agorot_to_json(5782).to_string(), "57.82");
    }

    #[test]
    fn booleans_are_read_from_strings_and_numbers_like_the_real_binder() {
        let v = json!({"a": "true", "b": "False", "c": 1, "d": false, "e": "yes", "f": ""});
        assert_eq!(boolean(&v, "a"), Ok(Some(true)));
        assert_eq!(boolean(&v, "B"), Ok(Some(false)));
        assert_eq!(boolean(&v, "c"), Ok(Some(true)));
        assert_eq!(boolean(&v, "d"), Ok(Some(false)));
        assert!(boolean(&v, "e").is_err());
        assert_eq!(boolean(&v, "f"), Ok(None));
        assert_eq!(boolean(&v, "missing"), Ok(None));
    }

    #[test]
    fn enums_are_read_from_names_integers_and_numeric_strings() {
        let table = [("Invoice", 0), ("InvoiceAndReceipt", 1), ("Order", 8)];
        let v =
            json!({"a": "Order", "b": "8", "c": 1, "d": "invoiceandreceipt", "e": "Nope", "f": 5});
        assert_eq!(enumeration(&v, "a", &table), Ok(Some(8)));
        assert_eq!(enumeration(&v, "b", &table), Ok(Some(8)));
        assert_eq!(enumeration(&v, "c", &table), Ok(Some(1)));
        assert_eq!(enumeration(&v, "d", &table), Ok(Some(1)));
        assert!(enumeration(&v, "e", &table).is_err());
        assert!(enumeration(&v, "f", &table).is_err());
    }

    #[test]
    fn property_names_match_without_regard_to_case() {
        let v = json!({"companyid": 5, "Name": null});
        assert_eq!(integer(&v, "CompanyID"), Ok(Some(5)));
        assert_eq!(string(&v, "Name"), Ok(None));
    }

    #[test]
    fn dates_are_read_in_the_forms_clients_send() {
        let d = |s: &str| parse_datetime(s).map(|x| x.to_string());
        assert_eq!(d("2025-06-09").as_deref(), Some("2025-06-09 00:00:00"));
        assert_eq!(
            d("2025-06-09T10:11:12").as_deref(),
            Some("2025-06-09 10:11:12")
        );
        assert_eq!(
            d("2025-06-09T10:11:12+03:00").as_deref(),
            Some("2025-06-09 10:11:12")
        );
        assert_eq!(d("09/06/2025"), None);
    }
}
