//! Redialing a fax that did not get through: how many times, and how long
//! to wait before each attempt (a first interval growing by a factor, as fax
//! servers do for busy and no-answer, up to a cap). Which outcomes are worth
//! another attempt is [`Outcome::worth_retrying`](super::send::Outcome::worth_retrying).

use std::time::Duration;

/// The longest pause between two attempts, unless the first interval is
/// longer still.
pub const MAX_PAUSE: Duration = Duration::from_secs(600);

/// How a sender redials.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first one.
    pub retries: u32,
    /// Pause before the first retry.
    pub interval: Duration,
    /// Each further pause is the previous one times this (1 = fixed).
    pub backoff: f64,
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            retries: 0,
            interval: Duration::ZERO,
            backoff: 1.0,
        }
    }

    /// The pause before retry `n` (1 for the first retry), or `None` when
    /// the retries are used up.
    pub fn pause_before_retry(&self, n: u32) -> Option<Duration> {
        if n == 0 || n > self.retries {
            return None;
        }
        let cap = MAX_PAUSE.max(self.interval).as_secs_f64();
        let factor = self.backoff.max(1.0).powi(n as i32 - 1);
        Some(Duration::from_secs_f64(
            (self.interval.as_secs_f64() * factor).min(cap),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(retries: u32, interval: f64, backoff: f64) -> RetryPolicy {
        RetryPolicy {
            retries,
            interval: Duration::from_secs_f64(interval),
            backoff,
        }
    }

    #[test]
    fn pauses_grow_by_the_factor_up_to_the_cap() {
        let p = policy(12, 30.0, 2.0);
        let secs: Vec<u64> = (1..=6)
            .map(|n| p.pause_before_retry(n).unwrap().as_secs())
            .collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 600]);
        assert_eq!(p.pause_before_retry(12), Some(MAX_PAUSE));
        assert_eq!(p.pause_before_retry(13), None);
    }

    #[test]
    fn fixed_interval_and_no_retries() {
        let p = policy(3, 0.25, 1.0);
        assert_eq!(p.pause_before_retry(3), Some(Duration::from_millis(250)));
        assert_eq!(p.pause_before_retry(4), None);
        assert_eq!(RetryPolicy::none().pause_before_retry(1), None);
    }

    #[test]
    fn an_interval_above_the_cap_stays() {
        let p = policy(2, 3600.0, 2.0);
        assert_eq!(p.pause_before_retry(2), Some(Duration::from_secs(3600)));
    }
}
