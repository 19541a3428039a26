//! What the codec's integration tests share: a small deterministic random
//! number generator, so that a failing page reproduces run after run.

/// A linear congruential generator (Knuth's MMIX constants), seeded by the
/// test; each number is the high 31 bits of the state, the better ones.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}
