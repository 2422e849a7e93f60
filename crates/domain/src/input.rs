//! What every request body must satisfy before its own parser reads it: no control character
//! that stored text must not hold, and no member its shape does not know.
//!
//! PostgreSQL refuses U+0000 in `text` and `jsonb`, and the other C0 controls (but tab, line
//! feed and carriage return) and DEL have no business in stored text, so they are refused at
//! the edge, at the JSON path (or query parameter) that holds them, with the one code
//! `invalid_characters` that the vendor parser uses too. A [`Shape`] lists the members a body
//! may have; [`unknown_members`] names each one it does not list, so that a typo such as
//! `bank_acount` is refused rather than silently ignored. Pure functions: no IO.

use serde_json::Value;

use crate::card::join_path;
use crate::errors::{FieldError, FieldProblem};

/// Whether `c` is a control character that stored text must not hold: U+0000–U+0008, U+000B,
/// U+000C, U+000E–U+001F and U+007F. Tab, line feed and carriage return may stay in free text.
pub fn is_forbidden_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{7F}')
}

/// Whether `text` holds a character [`is_forbidden_control`] refuses.
pub fn has_forbidden_control(text: &str) -> bool {
    text.chars().any(is_forbidden_control)
}

/// The problem of a value holding a control character (the code onboarding's fields use).
pub fn invalid_characters() -> FieldProblem {
    FieldProblem::new(
        "invalid_characters",
        "This value must not contain control characters (such as U+0000).",
        "הערך אינו יכול לכלול תווי בקרה (כגון U+0000).",
    )
}

/// Every string (and object key) in `value` that holds a forbidden control character, each as
/// an `invalid_characters` error at its JSON path (`items[0].name`); a bad key is reported at
/// its object's path joined with the key as it is.
///
/// This recurses once per nesting level; bodies come from `serde_json`, whose parser refuses
/// more than 128 levels, so the depth is bounded.
pub fn control_characters(value: &Value) -> Vec<FieldError> {
    let mut found = Vec::new();
    walk_controls(value, "", &mut found);
    found
}

fn walk_controls(value: &Value, path: &str, found: &mut Vec<FieldError>) {
    match value {
        Value::String(text) if has_forbidden_control(text) => {
            found.push(invalid_characters().at(path));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_controls(item, &format!("{path}[{i}]"), found);
            }
        }
        Value::Object(members) => {
            for (key, member) in members {
                let member_path = join_path(path, key);
                if has_forbidden_control(key) {
                    found.push(invalid_characters().at(member_path));
                } else {
                    walk_controls(member, &member_path, found);
                }
            }
        }
        _ => {}
    }
}

/// The members a JSON value may have. A value whose JSON type differs from its shape is left to
/// the parser, which names the type it expected.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// Anything: a scalar, or free-form JSON such as a signal's payload.
    Any,
    /// An object with these members, each with its own shape.
    Object(&'static [(&'static str, Shape)]),
    /// An array whose every item has this shape.
    Array(&'static Shape),
}

impl Shape {
    /// The names of the members this shape allows on an object (none for other shapes).
    pub fn member_names(&self) -> Vec<&'static str> {
        match self {
            Shape::Object(members) => members.iter().map(|(name, _)| *name).collect(),
            Shape::Any | Shape::Array(_) => Vec::new(),
        }
    }
}

/// The problem of a member the body's shape does not know.
pub fn unknown_field() -> FieldProblem {
    FieldProblem::new(
        "unknown_field",
        "This field is not part of the request; check its spelling.",
        "שדה זה אינו חלק מהבקשה; יש לבדוק את האיות.",
    )
}

/// Every member of `value` that `shape` does not know, each as an `unknown_field` error at its
/// JSON path, paths under `prefix`.
pub fn unknown_members(value: &Value, shape: &Shape, prefix: &str) -> Vec<FieldError> {
    let mut found = Vec::new();
    walk_unknown(value, shape, prefix, &mut found);
    found
}

fn walk_unknown(value: &Value, shape: &Shape, path: &str, found: &mut Vec<FieldError>) {
    match (shape, value) {
        (Shape::Object(members), Value::Object(given)) => {
            check_members(given, members, path, found);
        }
        (Shape::Array(item), Value::Array(items)) => {
            for (i, value) in items.iter().enumerate() {
                walk_unknown(value, item, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

fn check_members(
    given: &serde_json::Map<String, Value>,
    members: &[(&'static str, Shape)],
    path: &str,
    found: &mut Vec<FieldError>,
) {
    for (key, value) in given {
        let known = members.iter().find(|(name, _)| name == key);
        match known {
            Some((_, shape)) => walk_unknown(value, shape, &join_path(path, key), found),
            None => found.push(unknown_field().at(join_path(path, key))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_and_other_controls_are_found_at_their_paths_but_tab_lf_cr_are_not() {
        let body = json!({
            "a": "x\u{0}y",
            "b": ["ok", "bell\u{7}"],
            "c": {"d": "del\u{7f}", "e": "tab\tline\ncr\r"},
            "k\u{0}": 1,
            "n": 5
        });
        let paths: Vec<String> = control_characters(&body)
            .into_iter()
            .map(|e| {
                assert_eq!(e.code, "invalid_characters");
                e.field
            })
            .collect();
        assert_eq!(paths, vec!["a", "b[1]", "c.d", "k\u{0}"]);
    }

    #[test]
    fn every_forbidden_control_is_refused_and_nothing_else() {
        for c in (0u32..=0x7f).filter_map(char::from_u32) {
            let expected = c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r');
            assert_eq!(is_forbidden_control(c), expected, "{:?}", c);
        }
        assert!(!has_forbidden_control("דנה קרמיקה בע\"מ"));
    }

    const ITEM: &[(&str, Shape)] = &[("name", Shape::Any), ("quantity", Shape::Any)];
    const BODY: Shape = Shape::Object(&[
        ("items", Shape::Array(&Shape::Object(ITEM))),
        ("customer", Shape::Object(&[("name", Shape::Any)])),
        ("payload", Shape::Any),
    ]);

    #[test]
    fn unknown_members_are_named_at_every_level_at_once() {
        let body = json!({
            "items": [{"name": "a", "quantity": 1}, {"name": "b", "qty": 2}],
            "customer": {"name": "Noa", "emial": "noa@example.com"},
            "payload": {"anything": {"goes": true}},
            "bank_acount": {}
        });
        let paths: Vec<String> = unknown_members(&body, &BODY, "")
            .into_iter()
            .map(|e| {
                assert_eq!(e.code, "unknown_field");
                e.field
            })
            .collect();
        assert_eq!(paths, vec!["bank_acount", "customer.emial", "items[1].qty"]);
        assert_eq!(
            unknown_members(&json!({"items": "not an array"}), &BODY, "v").len(),
            0
        );
    }
}
