//! Waits that back off, with jitter so that many waiting tasks do not all try again at once.

use std::time::Duration;

/// `d` scaled by a factor between 0.75 and 1.25, from the clock's nanoseconds.
pub fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d.mul_f64(0.75 + f64::from(nanos % 1000) / 2000.0)
}

pub fn next_interval(current: Duration, max: Duration) -> Duration {
    (current * 3 / 2).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_backs_off_to_the_maximum() {
        let max = Duration::from_secs(30);
        let mut d = Duration::from_secs(2);
        let mut seen = vec![];
        for _ in 0..10 {
            d = next_interval(d, max);
            seen.push(d.as_secs());
        }
        assert_eq!(seen[0], 3);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*seen.last().unwrap(), 30);
    }
}
