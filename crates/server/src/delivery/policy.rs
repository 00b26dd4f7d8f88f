//! The one retry policy every destination uses: exponential backoff from a schedule, full
//! jitter, `Retry-After` honoured, `max_attempts` then dead.

use std::time::Duration;

/// How a destination answered one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted.
    Delivered,
    /// Try again, not before `after` when the destination said so (`Retry-After`).
    Retry {
        /// The destination's `Retry-After`, if it sent one.
        after: Option<Duration>,
    },
    /// Refused for good (e.g. 410 Gone): no further attempt.
    Permanent,
}

/// Backoff schedule and attempt limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before retry n (the last one repeats).
    pub schedule: Vec<Duration>,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

/// The longest `Retry-After` honoured: a destination cannot park an event for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl Default for RetryPolicy {
    fn default() -> Self {
        let s = Duration::from_secs;
        RetryPolicy {
            schedule: vec![s(1), s(5), s(30), s(120), s(600), s(1800), s(3600)],
            max_attempts: 10,
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Done.
    Delivered,
    /// Attempt again after this delay.
    RetryIn(Duration),
    /// Give up: dead.
    Dead,
}

impl RetryPolicy {
    /// The next step after attempt number `attempt` (1 = the first) ended with `verdict`.
    pub fn next(&self, attempt: u32, verdict: &Verdict) -> Next {
        match verdict {
            Verdict::Delivered => Next::Delivered,
            Verdict::Permanent => Next::Dead,
            Verdict::Retry { .. } if attempt >= self.max_attempts => Next::Dead,
            Verdict::Retry { after } => {
                let index = (attempt as usize)
                    .saturating_sub(1)
                    .min(self.schedule.len().saturating_sub(1));
                let base = self
                    .schedule
                    .get(index)
                    .copied()
                    .unwrap_or(Duration::from_secs(1));
                // Full jitter: anywhere in [0, base], so retries of many events spread out.
                let jittered = Duration::from_millis(fastrand::u64(0..=base.as_millis() as u64));
                Next::RetryIn(after.map_or(jittered, |a| jittered.max(a.min(MAX_RETRY_AFTER))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_jitter_retry_after_and_limits() {
        let policy = RetryPolicy {
            schedule: vec![Duration::from_secs(1), Duration::from_secs(10)],
            max_attempts: 3,
        };
        for _ in 0..100 {
            let Next::RetryIn(d) = policy.next(1, &Verdict::Retry { after: None }) else {
                panic!()
            };
            assert!(d <= Duration::from_secs(1));
            let Next::RetryIn(d) = policy.next(2, &Verdict::Retry { after: None }) else {
                panic!()
            };
            assert!(d <= Duration::from_secs(10));
            let Next::RetryIn(d) = policy.next(
                1,
                &Verdict::Retry {
                    after: Some(Duration::from_secs(7)),
                },
            ) else {
                panic!()
            };
            assert!(d >= Duration::from_secs(7));
        }
        let Next::RetryIn(capped) = policy.next(
            1,
            &Verdict::Retry {
                after: Some(Duration::from_secs(999_999)),
            },
        ) else {
            panic!()
        };
        assert_eq!(capped, MAX_RETRY_AFTER);
        assert_eq!(policy.next(3, &Verdict::Retry { after: None }), Next::Dead);
        assert!(matches!(
            policy.next(2, &Verdict::Retry { after: None }),
            Next::RetryIn(_)
        ));
        assert_eq!(policy.next(1, &Verdict::Permanent), Next::Dead);
        assert_eq!(policy.next(1, &Verdict::Delivered), Next::Delivered);
    }

    fn delays(policy: &RetryPolicy, attempt: u32) -> Vec<Duration> {
        (0..200)
            .map(
                |_| match policy.next(attempt, &Verdict::Retry { after: None }) {
                    Next::RetryIn(d) => d,
                    other => panic!("{other:?}"),
                },
            )
            .collect()
    }

    #[test]
    fn past_the_schedule_its_last_delay_repeats() {
        let policy = RetryPolicy {
            schedule: vec![Duration::from_secs(1), Duration::from_secs(10)],
            max_attempts: 20,
        };
        // Attempt 1 waits up to the first delay, every later one up to the last: full
        // jitter, so over 200 draws some land above the first delay.
        assert!(delays(&policy, 1)
            .iter()
            .all(|d| *d <= Duration::from_secs(1)));
        for attempt in [2, 3, 19] {
            let drawn = delays(&policy, attempt);
            assert!(drawn.iter().all(|d| *d <= Duration::from_secs(10)));
            assert!(
                drawn.iter().any(|d| *d > Duration::from_secs(1)),
                "attempt {attempt}"
            );
        }
        // A Retry-After shorter than the jitter leaves it alone.
        let short = Verdict::Retry {
            after: Some(Duration::from_millis(1)),
        };
        let drawn: Vec<Duration> = (0..200)
            .map(|_| match policy.next(2, &short) {
                Next::RetryIn(d) => d,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(drawn.iter().any(|d| *d > Duration::from_secs(1)));
    }

    #[test]
    fn the_default_policy_backs_off_up_to_an_hour_over_ten_attempts() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_attempts, 10);
        assert!(matches!(
            policy.next(9, &Verdict::Retry { after: None }),
            Next::RetryIn(_)
        ));
        assert_eq!(policy.next(10, &Verdict::Retry { after: None }), Next::Dead);
        assert!(delays(&policy, 9)
            .iter()
            .any(|d| *d > Duration::from_secs(1800)));
    }
}
