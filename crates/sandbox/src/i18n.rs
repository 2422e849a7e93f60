//! Error texts in Hebrew and English. The real API picks the language of `UserErrorMessage` from
//! the `Content-Language` request header and defaults to Hebrew (reference §1.1, S2).

use axum::http::HeaderMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    He,
    En,
}

impl Lang {
    /// `Content-Language: en` (or `en-US`, ...) selects English; anything else, or no header,
    /// selects Hebrew, the server's default.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Lang {
        let value = headers
            .get("content-language")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let first = value.split(',').next().unwrap_or("").trim();
        if first.len() >= 2 && first[..2].eq_ignore_ascii_case("en") {
            Lang::En
        } else {
            Lang::He
        }
    }
}

/// Every error text the sandbox can answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Msg {
    MissingCredentials,
    InvalidCredentials,
    PublicKeyNotAllowed,
    MissingField(String),
    InvalidField(String),
    InvalidCorporateNumber,
    DuplicateCorporateNumber,
    InvalidBankAccount,
    ApplicationNotInstalled(&'static str),
    TerminalPending,
    TerminalRejected,
    NoTerminal,
    TerminalAlreadyActive,
    MissingPaymentMethod,
    InvalidToken,
    TokenAlreadyUsed,
    GatewayFailure,
    CustomerNotFound,
    PaymentNotFound,
    DocumentNotFound,
    NegativeTotal,
    NoItems,
    UnsupportedCurrency,
    PaymentsDoNotMatchTotal { payments: String, total: String },
    MissingPayments,
    OriginalDocumentNotFound,
    DateRangeInvalid,
}

impl Msg {
    pub(crate) fn text(&self, lang: Lang) -> String {
        match lang {
            Lang::He => self.hebrew(),
            Lang::En => self.english(),
        }
    }

    fn english(&self) -> String {
        match self {
            Msg::MissingCredentials => "Missing API credentials (Credentials.CompanyID, Credentials.APIKey).".into(),
            Msg::InvalidCredentials => "Invalid API credentials: the CompanyID and APIKey do not match.".into(),
            Msg::PublicKeyNotAllowed => "This action requires the APIKey; the APIPublicKey is not accepted.".into(),
            Msg::MissingField(f) => format!("The field {f} is required."),
            Msg::InvalidField(f) => format!("The value of the field {f} is invalid."),
            Msg::InvalidCorporateNumber => "The corporate number is invalid (check digit).".into(),
            Msg::DuplicateCorporateNumber => "An organization with this corporate number already exists.".into(),
            Msg::InvalidBankAccount => "The bank account details are invalid.".into(),
            Msg::ApplicationNotInstalled(app) => format!("The {app} application is not installed for this organization."),
            Msg::TerminalPending => "The credit card terminal is pending approval; charges are not possible yet.".into(),
            Msg::TerminalRejected => "The credit card terminal request was rejected; charges are not possible.".into(),
            Msg::NoTerminal => "No credit card terminal is defined for this organization.".into(),
            Msg::TerminalAlreadyActive => "A credit card terminal is already active for this organization.".into(),
            Msg::MissingPaymentMethod => "No payment method was given (SingleUseToken).".into(),
            Msg::InvalidToken => "The single use token is invalid or expired.".into(),
            Msg::TokenAlreadyUsed => "The single use token was already used.".into(),
            Msg::GatewayFailure => "A technical error occurred while processing the transaction. Please try again later.".into(),
            Msg::CustomerNotFound => "The customer was not found.".into(),
            Msg::PaymentNotFound => "The payment was not found.".into(),
            Msg::DocumentNotFound => "The document was not found.".into(),
            Msg::NegativeTotal => "The total is below zero and SupportCredit was not set.".into(),
            Msg::NoItems => "At least one item is required.".into(),
            Msg::UnsupportedCurrency => "Only ILS is supported by the sandbox.".into(),
            Msg::PaymentsDoNotMatchTotal { payments, total } => {
                format!("The payments total ({payments}) does not match the document total ({total}).")
            }
            Msg::MissingPayments => "This document type requires payments.".into(),
            Msg::OriginalDocumentNotFound => "The original document was not found.".into(),
            Msg::DateRangeInvalid => "Date_From must not be after Date_To.".into(),
        }
    }

    fn hebrew(&self) -> String {
        match self {
            Msg::MissingCredentials => {
                "חסרים פרטי התחברות ל-API (Credentials.CompanyID, Credentials.APIKey).".into()
            }
            Msg::InvalidCredentials => {
                "פרטי ההתחברות ל-API שגויים: מספר החברה ומפתח ה-API אינם תואמים.".into()
            }
            Msg::PublicKeyNotAllowed => {
                "פעולה זו דורשת APIKey; מפתח ציבורי (APIPublicKey) אינו מתקבל.".into()
            }
            Msg::MissingField(f) => format!("השדה {f} הוא שדה חובה."),
            Msg::InvalidField(f) => format!("ערך השדה {f} אינו תקין."),
            Msg::InvalidCorporateNumber => "מספר התאגיד אינו תקין (ספרת ביקורת).".into(),
            Msg::DuplicateCorporateNumber => "כבר קיים ארגון עם מספר תאגיד זה.".into(),
            Msg::InvalidBankAccount => "פרטי חשבון הבנק אינם תקינים.".into(),
            Msg::ApplicationNotInstalled(app) => format!("האפליקציה {app} אינה מותקנת בארגון זה."),
            Msg::TerminalPending => "מסוף האשראי ממתין לאישור; לא ניתן לבצע חיובים עדיין.".into(),
            Msg::TerminalRejected => "בקשת מסוף האשראי נדחתה; לא ניתן לבצע חיובים.".into(),
            Msg::NoTerminal => "לא הוגדר מסוף אשראי לארגון זה.".into(),
            Msg::TerminalAlreadyActive => "כבר קיים מסוף אשראי פעיל לארגון זה.".into(),
            Msg::MissingPaymentMethod => "לא נמסר אמצעי תשלום (SingleUseToken).".into(),
            Msg::InvalidToken => "אסימון החיוב החד-פעמי אינו תקין או שפג תוקפו.".into(),
            Msg::TokenAlreadyUsed => "אסימון החיוב החד-פעמי כבר נוצל.".into(),
            Msg::GatewayFailure => "אירעה תקלה טכנית בעיבוד העסקה. נא לנסות שוב מאוחר יותר.".into(),
            Msg::CustomerNotFound => "הלקוח לא נמצא.".into(),
            Msg::PaymentNotFound => "התשלום לא נמצא.".into(),
            Msg::DocumentNotFound => "המסמך לא נמצא.".into(),
            Msg::NegativeTotal => "הסכום הכולל שלילי ולא הוגדר SupportCredit.".into(),
            Msg::NoItems => "נדרש לפחות פריט אחד.".into(),
            Msg::UnsupportedCurrency => "סביבת הבדיקות תומכת בשקלים (ILS) בלבד.".into(),
            Msg::PaymentsDoNotMatchTotal { payments, total } => {
                format!("סכום התקבולים ({payments}) אינו תואם לסכום המסמך ({total}).")
            }
            Msg::MissingPayments => "סוג מסמך זה דורש תקבולים.".into(),
            Msg::OriginalDocumentNotFound => "מסמך המקור לא נמצא.".into(),
            Msg::DateRangeInvalid => "Date_From חייב להיות לפני Date_To.".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_language_selects_english_only_when_asked() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::from_headers(&h), Lang::He);
        h.insert("content-language", "en-US".parse().unwrap());
        assert_eq!(Lang::from_headers(&h), Lang::En);
        h.insert("content-language", "he".parse().unwrap());
        assert_eq!(Lang::from_headers(&h), Lang::He);
    }
}
