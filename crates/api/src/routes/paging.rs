//! The query parameters the marketplace reads share: `limit` and `cursor` of keyset pages, and
//! time bounds. A bad value is a field error named after its parameter (answered 422 with all of
//! them at once), never a 500; nothing here touches the database.

use chrono::{DateTime, Utc};
use domain::errors::{FieldError, FieldProblem};
use store::run_queries::RunCursor;

/// The page size when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: i64 = 20;
/// The largest page.
pub(crate) const MAX_LIMIT: i64 = 100;

/// `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub(crate) fn limit(value: Option<&str>, errors: &mut Vec<FieldError>) -> i64 {
    let Some(text) = value else {
        return DEFAULT_LIMIT;
    };
    match text.parse::<i64>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
        _ => {
            errors.push(
                FieldProblem::new(
                    "invalid_value",
                    format!("Give a whole number from 1 to {MAX_LIMIT}."),
                    format!("יש לציין מספר שלם בין 1 ל-{MAX_LIMIT}."),
                )
                .at("limit"),
            );
            DEFAULT_LIMIT
        }
    }
}

/// `cursor`: the `next_cursor` of a previous page.
pub(crate) fn cursor(value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<RunCursor> {
    let text = value?;
    let cursor = RunCursor::decode(text);
    if cursor.is_none() {
        errors.push(
            FieldProblem::new(
                "invalid_cursor",
                "Pass the next_cursor of a previous page, unchanged.",
                "יש להעביר את next_cursor של העמוד הקודם, ללא שינוי.",
            )
            .at("cursor"),
        );
    }
    cursor
}

/// A time bound in RFC 3339, such as `2026-01-31T00:00:00Z`.
pub(crate) fn time(
    value: Option<&str>,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    let text = value?;
    let time = DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc));
    if time.is_none() {
        errors.push(
            FieldProblem::new(
                "invalid_time",
                "Give a time in RFC 3339, such as 2026-01-31T00:00:00Z.",
                "יש לציין זמן בתבנית RFC 3339, למשל 2026-01-31T00:00:00Z.",
            )
            .at(name),
        );
    }
    time
}

/// One of `choices`.
pub(crate) fn one_of<'a>(
    value: Option<&'a str>,
    name: &str,
    choices: &[&str],
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    let text = value?;
    if choices.contains(&text) {
        Some(text)
    } else {
        let list = choices.join(", ");
        errors.push(
            FieldProblem::new(
                "invalid_value",
                format!("Use one of {list}."),
                format!("יש להשתמש באחד מהערכים {list}."),
            )
            .at(name),
        );
        None
    }
}

/// Text matched against stored text: control characters (PostgreSQL refuses NUL) and more than
/// `max` characters are refused.
pub(crate) fn text<'a>(
    value: Option<&'a str>,
    name: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    let text = value?;
    if text.chars().any(char::is_control) {
        errors.push(
            FieldProblem::new(
                "invalid_characters",
                "Control characters are not allowed.",
                "אסור להשתמש בתווי בקרה.",
            )
            .at(name),
        );
        None
    } else if text.is_empty() || text.chars().count() > max {
        errors.push(
            FieldProblem::new(
                "invalid_length",
                format!("Give 1 to {max} characters."),
                format!("יש לציין 1 עד {max} תווים."),
            )
            .at(name),
        );
        None
    } else {
        Some(text)
    }
}

/// The first `limit` of `rows` (fetched as `limit + 1`), and the cursor of the next page when
/// there is one.
pub(crate) fn page<T>(
    mut rows: Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> RunCursor,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|row| key(row).encode())
    } else {
        None
    };
    (rows, next)
}
