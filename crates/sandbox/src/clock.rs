//! The provider's clock. SUMIT dates documents and payments in Israel local time, and VAT
//! follows the document date, so the sandbox keeps its time in Israel local time and lets tests
//! freeze it (for example on either side of 2025-01-01).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};

/// Israel local time for a UTC instant: UTC+2, or UTC+3 from the Friday before the last Sunday
/// of March at 02:00 until the last Sunday of October at 02:00 (the rule in force since 2013).
pub(crate) fn israel_local(utc: DateTime<Utc>) -> NaiveDateTime {
    let naive = utc.naive_utc();
    let year = naive.year();
    let two = NaiveTime::from_hms_opt(2, 0, 0).unwrap_or(NaiveTime::MIN);
    // Summer time starts at 02:00 standard time (00:00 UTC) and ends at 02:00 summer time
    // (23:00 UTC the day before).
    let start = (last_sunday(year, 3) - Duration::days(2)).and_time(two) - Duration::hours(2);
    let end = last_sunday(year, 10).and_time(two) - Duration::hours(3);
    let offset = if naive >= start && naive < end { 3 } else { 2 };
    naive + Duration::hours(offset)
}

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .unwrap_or(NaiveDate::MIN);
    let mut d = first_of_next - Duration::days(1);
    while d.weekday() != Weekday::Sun {
        d -= Duration::days(1);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn israel_time_is_utc_plus_two_in_winter_and_three_in_summer() {
        assert_eq!(
            israel_local(at("2024-12-31T22:30:00Z")).to_string(),
            "2025-01-01 00:30:00"
        );
        assert_eq!(
            israel_local(at("2025-07-01T12:00:00Z")).to_string(),
            "2025-07-01 15:00:00"
        );
        // 2025: summer time from Friday 28 March 02:00 until Sunday 26 October 02:00.
        assert_eq!(
            israel_local(at("2025-03-27T23:59:00Z")).to_string(),
            "2025-03-28 01:59:00"
        );
        assert_eq!(
            israel_local(at("2025-03-28T00:00:00Z")).to_string(),
            "2025-03-28 03:00:00"
        );
        assert_eq!(
            israel_local(at("2025-10-25T22:59:00Z")).to_string(),
            "2025-10-26 01:59:00"
        );
        assert_eq!(
            israel_local(at("2025-10-25T23:00:00Z")).to_string(),
            "2025-10-26 01:00:00"
        );
    }
}
