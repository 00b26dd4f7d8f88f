//! Rate limits, checked before anything else is done with a request (before the body is
//! read, before verification), so a flood costs a lookup and a 429: per source (every
//! sender together) and per peer (one client IP, across sources). Token buckets from
//! `governor` (GCRA): a sustained rate and a burst.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// A configured limit: `count` requests per `per`, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests…
    pub count: NonZeroU32,
    /// …per this period.
    pub per: Duration,
    /// Requests allowed at once after a quiet time.
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// Parses `100/s`, `6000/min`, `10000/h` and an optional burst (default: the count).
    pub fn parse(text: &str, burst: Option<u32>) -> Result<RateLimit, String> {
        let bad = || format!("`{text}` is not a rate; write e.g. \"100/s\", \"6000/min\"");
        let (count, unit) = text.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let count = NonZeroU32::new(count).ok_or("the rate must be at least 1")?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        let burst = match burst {
            Some(b) => NonZeroU32::new(b).ok_or("burst must be at least 1")?,
            None => count,
        };
        Ok(RateLimit { count, per, burst })
    }

    fn quota(&self) -> Quota {
        // One request every `per / count`: the sustained rate; the burst on top.
        let every = self.per / self.count.get();
        Quota::with_period(every.max(Duration::from_nanos(1)))
            .expect("a period above zero")
            .allow_burst(self.burst)
    }
}

/// The limiters of a gateway.
#[derive(Debug)]
pub(crate) struct Limiters {
    sources: Vec<Option<DefaultDirectRateLimiter>>,
    peers: Option<DefaultKeyedRateLimiter<IpAddr>>,
    clock: DefaultClock,
}

impl Limiters {
    pub(crate) fn new(sources: &[Option<RateLimit>], peer: Option<RateLimit>) -> Limiters {
        Limiters {
            sources: sources
                .iter()
                .map(|l| l.map(|l| RateLimiter::direct(l.quota())))
                .collect(),
            peers: peer.map(|l| RateLimiter::keyed(l.quota())),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when the request is over a limit: the peer's first (a single noisy
    /// client does not use up its source's budget for everyone), then the source's.
    pub(crate) fn check(&self, source: usize, peer: Option<IpAddr>) -> Result<(), Duration> {
        if self.peers.is_none() && self.sources.get(source).is_none_or(Option::is_none) {
            return Ok(());
        }
        let now = self.clock.now();
        if let (Some(peers), Some(ip)) = (&self.peers, peer) {
            peers.check_key(&ip).map_err(|n| n.wait_time_from(now))?;
        }
        if let Some(Some(limiter)) = self.sources.get(source) {
            limiter.check().map_err(|n| n.wait_time_from(now))?;
        }
        Ok(())
    }

    /// Forgets peers whose buckets are full again, so the table does not grow with every
    /// address ever seen.
    pub(crate) fn forget_idle_peers(&self) {
        if let Some(peers) = &self.peers {
            peers.retain_recent();
            peers.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_bad_ones_say_why() {
        let l = RateLimit::parse("100/s", None).unwrap();
        assert_eq!(
            (l.count.get(), l.per, l.burst.get()),
            (100, Duration::from_secs(1), 100)
        );
        let l = RateLimit::parse("6000/min", Some(50)).unwrap();
        assert_eq!((l.per, l.burst.get()), (Duration::from_secs(60), 50));
        assert!(RateLimit::parse("100", None)
            .unwrap_err()
            .contains("is not a rate"));
        assert!(RateLimit::parse("0/s", None)
            .unwrap_err()
            .contains("at least 1"));
        assert!(RateLimit::parse("5/fortnight", None).is_err());
        assert!(RateLimit::parse("5/s", Some(0)).is_err());
    }

    #[test]
    fn a_burst_then_the_rate_per_source_and_per_peer() {
        let limit = RateLimit::parse("1/h", Some(3)).unwrap();
        let limiters = Limiters::new(
            &[Some(limit), None],
            Some(RateLimit::parse("1/h", Some(5)).unwrap()),
        );
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limiters.check(0, Some(a)).is_ok());
        }
        let wait = limiters.check(0, Some(b)).unwrap_err();
        assert!(wait > Duration::from_secs(1000), "{wait:?}");
        // Source 1 has no limit of its own, but peer `a` has used 4 of its 5.
        assert!(limiters.check(1, Some(a)).is_ok());
        assert!(limiters.check(1, Some(a)).is_ok(), "the 5th of a's burst");
        assert!(limiters.check(1, Some(a)).is_err());
        assert!(limiters.check(1, Some(b)).is_ok());
        assert!(limiters.check(1, None).is_ok());
    }
}
