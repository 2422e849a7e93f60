//! The dashboard's two languages. English is written in the pages; [`t`] gives the Hebrew of each
//! label (the page is then right to left). The language comes from `?lang=he|en` (remembered in a
//! cookie), else that cookie, else `Accept-Language`.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use domain::errors::Lang;

/// The cookie that remembers the chosen language.
const LANG_COOKIE: &str = "vf_lang";

/// The language a page is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ui(pub Lang);

fn query_lang(query: Option<&str>) -> Option<Lang> {
    query?.split('&').find_map(|pair| match pair {
        "lang=he" => Some(Lang::He),
        "lang=en" => Some(Lang::En),
        _ => None,
    })
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

impl<S: Send + Sync> FromRequestParts<S> for Ui {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(lang) = query_lang(parts.uri.query()) {
            return Ok(Ui(lang));
        }
        match cookie(&parts.headers, LANG_COOKIE) {
            Some("he") => return Ok(Ui(Lang::He)),
            Some("en") => return Ok(Ui(Lang::En)),
            _ => {}
        }
        let lang = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|value| value.to_str().ok())
            .map(Lang::from_accept_language)
            .unwrap_or(Lang::En);
        Ok(Ui(lang))
    }
}

/// Remembers a language chosen with `?lang=` in a cookie, so the next pages keep it.
pub(crate) async fn remember_language(request: Request, next: Next) -> Response {
    let chosen = query_lang(request.uri().query());
    let mut response = next.run(request).await;
    if let Some(lang) = chosen {
        let value = format!(
            "{LANG_COOKIE}={}; Path=/admin; SameSite=Strict; Max-Age=31536000",
            lang.code()
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The label `en` in `lang`: itself in English, its Hebrew from the table otherwise (English when
/// the table lacks it, which a test prevents for every label the pages use).
pub(crate) fn t(lang: Lang, en: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::He => HEBREW
            .iter()
            .find(|(key, _)| *key == en)
            .map(|(_, he)| *he)
            .unwrap_or(en),
    }
}

/// English label → Hebrew label.
const HEBREW: &[(&str, &str)] = &[
    ("vendorflow operations", "vendorflow — תפעול"),
    ("Runs", "הרצות"),
    ("Run", "הרצה"),
    ("Vendors", "ספקים"),
    ("Vendor", "ספק"),
    ("Webhooks", "וובהוקים"),
    ("Audit log", "יומן ביקורת"),
    ("Sign out", "התנתקות"),
    ("Sign in", "כניסה"),
    ("Sign in to the dashboard", "כניסה ללוח הבקרה"),
    ("Token", "אסימון"),
    (
        "Paste an operator or viewer token. It is checked once and never stored in your browser.",
        "הדביקו אסימון של מפעיל או צופה. הוא נבדק פעם אחת ואינו נשמר בדפדפן.",
    ),
    ("Signed in as", "מחובר/ת בתור"),
    ("operator", "מפעיל/ה"),
    ("viewer", "צופה"),
    (
        "You are a viewer: you can see everything but cannot act.",
        "את/ה צופה: אפשר לראות הכול אך לא לבצע פעולות.",
    ),
    ("Workflow", "תהליך"),
    ("Status", "מצב"),
    ("Step", "שלב"),
    ("Current step", "שלב נוכחי"),
    ("Created from", "נוצר מ־"),
    ("Created before", "נוצר לפני"),
    ("Stuck longer than (minutes)", "תקוע יותר מ־(דקות)"),
    ("Sort", "מיון"),
    ("Newest first", "החדשים קודם"),
    ("Oldest first", "הישנים קודם"),
    ("Filter", "סינון"),
    ("Clear", "ניקוי"),
    ("any", "הכול"),
    ("All", "הכול"),
    ("Total", "סה״כ"),
    ("Next page", "העמוד הבא"),
    ("First page", "העמוד הראשון"),
    ("No runs match.", "אין הרצות מתאימות."),
    ("Created", "נוצר"),
    ("Updated", "עודכן"),
    ("Finished", "הסתיים"),
    ("Attempt", "ניסיון"),
    ("Attempts", "ניסיונות"),
    ("Next run", "ההרצה הבאה"),
    ("Reason", "סיבה"),
    ("Why", "סיבה"),
    ("Outcome", "תוצאה"),
    ("Error", "שגיאה"),
    ("Duration", "משך"),
    ("Started", "התחיל"),
    ("Message", "הודעה"),
    ("Step timeline", "ציר השלבים"),
    ("History", "היסטוריה"),
    ("Event", "אירוע"),
    ("Who", "מי"),
    ("When", "מתי"),
    ("What to do next", "מה לעשות עכשיו"),
    ("Actions", "פעולות"),
    ("Retry now", "נסו שוב עכשיו"),
    ("Resume from step", "המשך משלב"),
    ("Cancel run", "ביטול ההרצה"),
    ("Pause", "השהיה"),
    ("Resume", "המשך"),
    ("Send signal", "שליחת אות"),
    ("Signal", "אות"),
    ("Apply", "ביצוע"),
    ("not run yet", "טרם רץ"),
    ("current", "נוכחי"),
    ("skipped or not reached", "דולג או טרם הגיע"),
    ("next retry at", "ניסיון חוזר ב־"),
    (
        "Why? (required, kept in the audit log)",
        "למה? (חובה, נשמר ביומן הביקורת)",
    ),
    ("Audit entries", "רשומות ביקורת"),
    ("No audit entries.", "אין רשומות ביקורת."),
    ("Action", "פעולה"),
    ("Target", "יעד"),
    ("Result", "תוצאה"),
    ("Detail", "פירוט"),
    ("Channel", "ערוץ"),
    ("Onboarding state", "מצב קליטה"),
    ("State", "מצב"),
    ("Terminal", "מסוף"),
    ("Keys", "מפתחות"),
    ("Provider organization", "ארגון אצל הספק"),
    ("Mode", "מסלול"),
    ("External id", "מזהה חיצוני"),
    ("Legal name", "שם רשום"),
    ("Corporate number", "מספר תאגיד"),
    ("Search", "חיפוש"),
    ("No vendors match.", "אין ספקים מתאימים."),
    ("Bank account", "חשבון בנק"),
    ("API key", "מפתח API"),
    ("Public key", "מפתח ציבורי"),
    ("fingerprint", "טביעת אצבע"),
    ("last digits", "ספרות אחרונות"),
    ("not stored", "לא שמור"),
    ("Charges", "חיובים"),
    ("Documents", "מסמכים"),
    ("No charges.", "אין חיובים."),
    ("No documents.", "אין מסמכים."),
    ("Order", "הזמנה"),
    ("Amount", "סכום"),
    ("approved", "אושר"),
    ("declined", "נדחה"),
    ("Reference", "אסמכתה"),
    ("Number", "מספר"),
    ("Supply lost API keys", "הזנת מפתחות API שאבדו"),
    (
        "The values are encrypted at once and never shown again. A paused onboarding resumes.",
        "הערכים מוצפנים מיד ולא יוצגו שוב. קליטה מושהית תמשיך.",
    ),
    ("Company id", "מזהה חברה"),
    ("Save keys", "שמירת המפתחות"),
    ("Endpoints", "נקודות קצה"),
    ("Deliveries", "משלוחים"),
    ("Dead letters", "הודעות מתות"),
    ("Pending", "ממתינים"),
    ("enabled", "פעיל"),
    ("disabled", "מושבת"),
    ("Replay", "שליחה חוזרת"),
    ("Event type", "סוג אירוע"),
    ("Last answer", "תשובה אחרונה"),
    ("No deliveries.", "אין משלוחים."),
    ("No endpoints.", "אין נקודות קצה."),
    ("Bulk retry", "ניסיון חוזר גורף"),
    ("Bulk cancel", "ביטול גורף"),
    ("Dry run", "הרצת ניסיון"),
    ("These runs would be affected", "ההרצות שיושפעו"),
    ("runs match this filter", "הרצות מתאימות לסינון"),
    (
        "Only the first runs listed here, oldest first, will be acted on. Narrow the filter for the rest.",
        "רק ההרצות הראשונות שמופיעות כאן, מהישנה לחדשה, יטופלו. צמצמו את הסינון עבור השאר.",
    ),
    ("Confirm", "אישור"),
    ("Bulk result", "תוצאת הפעולה הגורפת"),
    ("done", "בוצע"),
    ("refused", "נדחה"),
    ("Back to runs", "חזרה להרצות"),
    ("Language", "שפה"),
    ("times are UTC", "השעות ב־UTC"),
    ("Not found", "לא נמצא"),
    ("Forbidden", "אסור"),
    ("Refused", "נדחה"),
    ("Back", "חזרה"),
    ("Operator action", "פעולת מפעיל"),
    (
        "A backend token cannot sign in to the dashboard: use a viewer or operator token.",
        "אסימון של מערכת צד־שרת אינו יכול להתחבר ללוח הבקרה: השתמשו באסימון של מפעיל או צופה.",
    ),
    (
        "This token is unknown or revoked.",
        "האסימון אינו מוכר או שבוטל.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `t(l, "...")` label in the dashboard's sources.
    fn labels_in(source: &'static str) -> Vec<&'static str> {
        let mut labels = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find("t(l, \"") {
            let start = at + "t(l, \"".len();
            let end = start + rest[start..].find('"').expect("a closing quote");
            labels.push(&rest[start..end]);
            rest = &rest[end..];
        }
        labels
    }

    #[test]
    fn every_label_the_pages_use_has_a_hebrew_translation() {
        let sources = [
            include_str!("views.rs"),
            include_str!("session.rs"),
            include_str!("runs_pages.rs"),
            include_str!("vendors_pages.rs"),
            include_str!("webhooks_pages.rs"),
            include_str!("audit_page.rs"),
        ];
        let labels: Vec<_> = sources.into_iter().flat_map(labels_in).collect();
        assert!(labels.len() > 50, "the scan found the labels: {labels:?}");
        let missing: Vec<_> = labels
            .iter()
            .filter(|label| !HEBREW.iter().any(|(en, _)| en == *label))
            .collect();
        assert!(missing.is_empty(), "labels without Hebrew: {missing:?}");
    }

    #[test]
    fn the_language_comes_from_the_query_first() {
        assert_eq!(query_lang(Some("status=paused&lang=he")), Some(Lang::He));
        assert_eq!(query_lang(Some("lang=en")), Some(Lang::En));
        assert_eq!(query_lang(Some("lang=fr")), None);
        assert_eq!(t(Lang::He, "Runs"), "הרצות");
        assert_eq!(t(Lang::En, "Runs"), "Runs");
    }
}
