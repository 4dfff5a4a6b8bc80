//! Polling with back-off: pauses of 1 ms doubling up to 50 ms, for at most a given time. Used
//! wherever no_leak waits for something to happen (threads to exit, another capture to end).

use std::time::{Duration, Instant};

/// The longest single pause.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// A bounded wait, polled by the caller between pauses.
pub(crate) struct Backoff {
    started: Instant,
    limit: Duration,
    pause: Duration,
}

impl Backoff {
    /// A wait of at most `limit`.
    pub(crate) fn new(limit: Duration) -> Backoff {
        Backoff {
            started: Instant::now(),
            limit,
            pause: Duration::from_millis(1),
        }
    }

    /// Sleeps for the next pause (never past the limit) and returns true, or returns false at
    /// once when the time is up.
    pub(crate) fn pause(&mut self) -> bool {
        let left = self.limit.saturating_sub(self.started.elapsed());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(self.next().min(left));
        true
    }

    /// The next pause: 1 ms, then twice the last, at most [`MAX_PAUSE`].
    fn next(&mut self) -> Duration {
        let p = self.pause;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        p
    }

    /// How long it has waited so far.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_secs(1));
        let ms: Vec<u128> = (0..8).map(|_| b.next().as_millis()).collect();
        assert_eq!(ms, [1, 2, 4, 8, 16, 32, 50, 50]);
    }

    #[test]
    fn stops_at_the_limit() {
        let mut b = Backoff::new(Duration::from_millis(20));
        while b.pause() {}
        assert!(b.elapsed() >= Duration::from_millis(20));
        assert!(!b.pause(), "no pause once the time is up");
    }

    #[test]
    fn a_zero_limit_never_sleeps() {
        let mut b = Backoff::new(Duration::ZERO);
        assert!(!b.pause());
    }
}
