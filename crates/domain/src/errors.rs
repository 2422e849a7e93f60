//! Field-level validation errors, in English and Hebrew.
//!
//! A parser of one value (a phone number, a corporate number) reports a [`FieldProblem`]: what is
//! wrong, without knowing where the value sat. The caller that walks a request body attaches the
//! JSON path and gets a [`FieldError`]; all of a request's errors travel together as
//! [`ValidationErrors`], which the API turns into a 422 in the language of `Accept-Language`.
//!
//! Messages never quote the offending value: it may be a bank account or a card number.

use std::fmt;

use serde::Serialize;

/// The language of user-facing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    He,
    #[default]
    En,
}

impl Lang {
    /// Picks the language from an HTTP `Accept-Language` header value.
    ///
    /// The supported language with the highest quality wins; among equal qualities the one
    /// listed first wins. `he` and the obsolete `iw` (any region) mean Hebrew, `en` English;
    /// other languages are skipped, entries with `q=0` or a malformed `q` are ignored, and when
    /// nothing supported is asked for the answer is English.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(u16, Lang)> = None;
        for entry in header.split(',') {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let primary = tag.split(['-', '_']).next().unwrap_or("");
            let lang = if primary.eq_ignore_ascii_case("he") || primary.eq_ignore_ascii_case("iw") {
                Lang::He
            } else if primary.eq_ignore_ascii_case("en") {
                Lang::En
            } else {
                continue;
            };
            let mut quality = Some(1000);
            for param in parts {
                let param = param.trim();
                if let Some(value) = param
                    .strip_prefix("q=")
                    .or_else(|| param.strip_prefix("Q="))
                {
                    quality = parse_quality(value.trim());
                }
            }
            let Some(quality) = quality else { continue };
            if quality == 0 {
                continue;
            }
            // Strictly greater: on a tie the earlier entry stays.
            if best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }

    /// The language tag to send back in `Content-Language`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::He => "he",
            Lang::En => "en",
        }
    }
}

/// Parses an RFC 9110 quality value (`0`, `0.8`, `1.000`) into thousandths, so that no float is
/// involved; anything else is `None`.
fn parse_quality(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in fraction.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// What is wrong with one value, before anyone knows where it sat in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message_en}")]
pub struct FieldProblem {
    /// A stable machine code in snake_case, e.g. `invalid_phone`.
    pub code: &'static str,
    pub message_en: String,
    pub message_he: String,
}

impl FieldProblem {
    pub fn new(
        code: &'static str,
        message_en: impl Into<String>,
        message_he: impl Into<String>,
    ) -> Self {
        FieldProblem {
            code,
            message_en: message_en.into(),
            message_he: message_he.into(),
        }
    }

    /// The value is missing, null or empty.
    pub fn required() -> Self {
        FieldProblem::new("required", "This field is required.", "שדה חובה.")
    }

    /// The value has the wrong JSON type, e.g. an array where text was expected.
    pub fn invalid_type(expected_en: &str, expected_he: &str) -> Self {
        FieldProblem::new(
            "invalid_type",
            format!("Expected {expected_en}."),
            format!("צפוי {expected_he}."),
        )
    }

    pub fn message(&self, lang: Lang) -> &str {
        match lang {
            Lang::He => &self.message_he,
            Lang::En => &self.message_en,
        }
    }

    /// Places this problem at a JSON path.
    pub fn at(self, field: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            code: self.code,
            message_en: self.message_en,
            message_he: self.message_he,
        }
    }
}

/// One bad field of a request: its JSON path (e.g. `vendor.bank_account.account`), a machine
/// code and a message in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message_en: String,
    pub message_he: String,
}

impl FieldError {
    pub fn message(&self, lang: Lang) -> &str {
        match lang {
            Lang::He => &self.message_he,
            Lang::En => &self.message_en,
        }
    }

    /// The shape of one entry of the 422 body: `{"field", "code", "message"}`.
    pub fn localized(&self, lang: Lang) -> LocalizedFieldError<'_> {
        LocalizedFieldError {
            field: &self.field,
            code: self.code,
            message: self.message(lang),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.message_en, self.code)
    }
}

/// A [`FieldError`] in one language, as it appears in an API response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LocalizedFieldError<'a> {
    pub field: &'a str,
    pub code: &'a str,
    pub message: &'a str,
}

/// Every bad field of one request, in the order they were found. Never empty when returned as
/// an error by this crate.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    pub fn new(errors: Vec<FieldError>) -> Self {
        ValidationErrors(errors)
    }

    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    /// The error at `field`, if there is one.
    pub fn get(&self, field: &str) -> Option<&FieldError> {
        self.0.iter().find(|e| e.field == field)
    }

    /// The `errors` array of a 422 body in one language.
    pub fn localized(&self, lang: Lang) -> Vec<LocalizedFieldError<'_>> {
        self.0.iter().map(|e| e.localized(lang)).collect()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "validation failed")?;
        for (i, error) in self.0.iter().enumerate() {
            write!(f, "{}{error}", if i == 0 { ": " } else { "; " })?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl From<Vec<FieldError>> for ValidationErrors {
    fn from(errors: Vec<FieldError>) -> Self {
        ValidationErrors(errors)
    }
}

impl IntoIterator for ValidationErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Removes the invisible bidirectional marks (LRM, RLM, embeddings, isolates) that text copied
/// from a right-to-left page often carries around numbers, so that `‏052-1234567` parses.
pub(crate) fn strip_bidi_marks(input: &str) -> std::borrow::Cow<'_, str> {
    fn is_bidi_mark(c: char) -> bool {
        matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }
    if input.chars().any(is_bidi_mark) {
        std::borrow::Cow::Owned(input.chars().filter(|c| !is_bidi_mark(*c)).collect())
    } else {
        std::borrow::Cow::Borrowed(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_hebrew_for_he_he_il_and_iw() {
        for header in [
            "he",
            "he-IL",
            "iw",
            "HE-il",
            "iw-IL,en;q=0.5",
            "fr, he;q=0.3",
        ] {
            assert_eq!(Lang::from_accept_language(header), Lang::He, "{header}");
        }
    }

    #[test]
    fn accept_language_defaults_to_english() {
        for header in [
            "",
            "*",
            "fr-FR",
            "en-US,he;q=0.8",
            "he;q=0, fr",
            "hebrew",
            "he;q=2",
        ] {
            assert_eq!(Lang::from_accept_language(header), Lang::En, "{header}");
        }
    }

    #[test]
    fn accept_language_follows_quality_not_order() {
        assert_eq!(Lang::from_accept_language("en;q=0.4, he;q=0.9"), Lang::He);
        assert_eq!(
            Lang::from_accept_language("he;q=0.5, en-GB;q=0.51"),
            Lang::En
        );
        assert_eq!(Lang::from_accept_language("he, en"), Lang::He);
    }

    #[test]
    fn field_error_message_is_in_the_requested_language() {
        let error = FieldProblem::required().at("vendor.email");
        assert_eq!(error.message(Lang::En), "This field is required.");
        assert_eq!(error.message(Lang::He), "שדה חובה.");
        let json = serde_json::to_value(error.localized(Lang::He)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"field": "vendor.email", "code": "required", "message": "שדה חובה."})
        );
    }

    #[test]
    fn validation_errors_display_lists_every_field() {
        let errors = ValidationErrors::new(vec![
            FieldProblem::required().at("vendor.email"),
            FieldProblem::required().at("vendor.phone"),
        ]);
        let text = errors.to_string();
        assert!(
            text.contains("vendor.email") && text.contains("vendor.phone"),
            "{text}"
        );
    }

    #[test]
    fn bidi_marks_are_stripped() {
        assert_eq!(strip_bidi_marks("\u{200F}052\u{200E}-1"), "052-1");
        assert!(matches!(
            strip_bidi_marks("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
