//! When to try a delivery again, and what an answer means: pure rules, no IO.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngExt;
use store::webhooks::AttemptOutcome;

/// The delays between attempts and the jitter applied to each.
///
/// The standard schedule is the Standard Webhooks example: the first attempt immediately, then
/// retries after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (ten attempts over
/// about 75.5 hours), each delay varied by ±15% so that many failed deliveries do not all retry
/// in the same instant.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    jitter: f64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule::standard()
    }
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;

impl RetrySchedule {
    /// The Standard Webhooks schedule with ±15% jitter.
    pub fn standard() -> RetrySchedule {
        RetrySchedule::new(
            [
                5,
                5 * MINUTE,
                30 * MINUTE,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                14 * HOUR,
                20 * HOUR,
                24 * HOUR,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
            0.15,
        )
    }

    /// A schedule with these delays between attempts (so `delays.len() + 1` attempts in all) and
    /// a jitter fraction, clamped to [0, 0.5].
    pub fn new(delays: Vec<Duration>, jitter: f64) -> RetrySchedule {
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 0.5)
        } else {
            0.0
        };
        RetrySchedule { delays, jitter }
    }

    /// How many attempts a delivery gets before it becomes a dead letter.
    pub fn max_attempts(&self) -> i32 {
        i32::try_from(self.delays.len() + 1).unwrap_or(i32::MAX)
    }

    /// The delays between attempts, without jitter.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// The jitter fraction.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The delay, without jitter, before the attempt after attempt number `attempt` (1-based);
    /// `None` when `attempt` was the last.
    pub fn base_delay_after(&self, attempt: i32) -> Option<Duration> {
        let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
        self.delays.get(index).copied()
    }

    /// `base` varied uniformly by up to ± the jitter fraction.
    pub fn jittered(&self, base: Duration) -> Duration {
        if self.jitter == 0.0 {
            return base;
        }
        let factor = rand::rng().random_range((1.0 - self.jitter)..=(1.0 + self.jitter));
        base.mul_f64(factor)
    }

    /// The longest delay of the schedule: a `Retry-After` longer than this is shortened to it,
    /// so a receiver cannot park a delivery for an arbitrary time.
    pub fn longest_delay(&self) -> Duration {
        self.delays.iter().copied().max().unwrap_or_default()
    }
}

/// What came back from one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP answer, and its `Retry-After` (already parsed) if it had one.
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// No answer: the connection failed or timed out.
    NoAnswer,
    /// The request was never sent because it can never succeed as configured (for example the
    /// URL is blocked by the egress policy); the delivery becomes a dead letter at once.
    Refused,
}

/// Decides what becomes of attempt number `attempt` (1-based) given its answer: only 2xx is
/// success; 410 disables the endpoint; every other answer, 3xx included, is a failure retried on
/// the schedule until the last attempt. A `Retry-After` on 429 or 503 is honoured as a minimum
/// delay (capped at the schedule's longest delay).
pub fn decide(schedule: &RetrySchedule, attempt: i32, answer: Answer) -> AttemptOutcome {
    let retry_after = match answer {
        Answer::Status { code, .. } if (200..300).contains(&code) => {
            return AttemptOutcome::Delivered;
        }
        Answer::Status { code: 410, .. } => return AttemptOutcome::Gone,
        Answer::Refused => return AttemptOutcome::Dead,
        Answer::Status {
            code: 429 | 503,
            retry_after,
        } => retry_after,
        Answer::Status { .. } | Answer::NoAnswer => None,
    };
    let Some(base) = schedule.base_delay_after(attempt) else {
        return AttemptOutcome::Dead;
    };
    let scheduled = schedule.jittered(base);
    let after = match retry_after {
        Some(wanted) => scheduled.max(wanted.min(schedule.longest_delay())),
        None => scheduled,
    };
    AttemptOutcome::Retry { after }
}

/// Parses a `Retry-After` value: a number of seconds, or an HTTP date (IMF-fixdate, as in
/// `Wed, 21 Oct 2015 07:28:00 GMT`), relative to `now`. A date in the past means zero.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_schedule_has_ten_attempts_over_about_seventy_five_hours() {
        let schedule = RetrySchedule::standard();
        assert_eq!(schedule.max_attempts(), 10);
        let total: Duration = schedule.delays().iter().sum();
        assert_eq!(total, Duration::from_secs(75 * HOUR + 35 * MINUTE + 5));
        assert_eq!(schedule.base_delay_after(1), Some(Duration::from_secs(5)));
        assert_eq!(
            schedule.base_delay_after(9),
            Some(Duration::from_secs(24 * HOUR))
        );
        assert_eq!(schedule.base_delay_after(10), None);
        assert_eq!(schedule.base_delay_after(0), None);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let schedule = RetrySchedule::standard();
        let base = Duration::from_secs(1000);
        for _ in 0..1000 {
            let d = schedule.jittered(base);
            assert!(
                d >= Duration::from_secs(850) && d <= Duration::from_secs(1150),
                "{d:?}"
            );
        }
        let exact = RetrySchedule::new(vec![base], 0.0);
        assert_eq!(exact.jittered(base), base);
        assert_eq!(RetrySchedule::new(vec![], 3.0).jitter(), 0.5);
    }

    #[test]
    fn only_2xx_is_success_and_410_means_gone() {
        let s = RetrySchedule::new(vec![Duration::from_secs(5)], 0.0);
        let status = |code| Answer::Status {
            code,
            retry_after: None,
        };
        assert_eq!(decide(&s, 1, status(200)), AttemptOutcome::Delivered);
        assert_eq!(decide(&s, 1, status(204)), AttemptOutcome::Delivered);
        assert_eq!(decide(&s, 1, status(410)), AttemptOutcome::Gone);
        for failure in [status(301), status(302), status(400), status(500)] {
            assert_eq!(
                decide(&s, 1, failure),
                AttemptOutcome::Retry {
                    after: Duration::from_secs(5)
                }
            );
            assert_eq!(decide(&s, 2, failure), AttemptOutcome::Dead);
        }
        assert_eq!(
            decide(&s, 1, Answer::NoAnswer),
            AttemptOutcome::Retry {
                after: Duration::from_secs(5)
            }
        );
        assert_eq!(decide(&s, 1, Answer::Refused), AttemptOutcome::Dead);
    }

    #[test]
    fn retry_after_on_429_and_503_is_a_minimum_capped_at_the_longest_delay() {
        let s = RetrySchedule::new(vec![Duration::from_secs(5), Duration::from_secs(600)], 0.0);
        let answer = |code, secs| Answer::Status {
            code,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(
            decide(&s, 1, answer(429, 120)),
            AttemptOutcome::Retry {
                after: Duration::from_secs(120)
            }
        );
        assert_eq!(
            decide(&s, 1, answer(503, 1)),
            AttemptOutcome::Retry {
                after: Duration::from_secs(5)
            }
        );
        assert_eq!(
            decide(&s, 1, answer(429, 86_400 * 30)),
            AttemptOutcome::Retry {
                after: Duration::from_secs(600)
            }
        );
        // Other statuses do not get to choose their delay.
        assert_eq!(
            decide(&s, 1, answer(500, 120)),
            AttemptOutcome::Retry {
                after: Duration::from_secs(5)
            }
        );
        // The last attempt stays the last, whatever Retry-After says.
        assert_eq!(decide(&s, 3, answer(429, 10)), AttemptOutcome::Dead);
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(28 * 60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 06:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }
}
