//! Capped exponential backoff with jitter, for every reconnect loop.

use std::time::Duration;

/// Pauses between attempts: doubling from `first` up to `max`, each drawn
/// between half and all of the current step so that many clients cut off
/// at once do not all come back in the same instant.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            step: first,
        }
    }

    /// The next pause; the step doubles for the time after.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.step.mul_f64(rand::random_range(0.5..=1.0));
        self.step = (self.step * 2).min(self.max);
        pause
    }

    /// Back to the first step, after a success.
    pub fn reset(&mut self) {
        self.step = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let steps: Vec<u128> = (0..5).map(|_| b.next_pause().as_millis()).collect();
        for (got, step) in steps.iter().zip([100, 200, 400, 400, 400]) {
            assert!(
                *got >= step / 2 && *got <= step,
                "{got} not in [{}, {step}]",
                step / 2
            );
        }
        b.reset();
        assert!(b.next_pause() <= Duration::from_millis(100));
    }
}
