//! The seeded generator of the reference-model and stress tests (splitmix64), shared so
//! that a seed means the same sequence in both. Included with `#[path]` by each test
//! binary that uses it.

/// splitmix64: tiny, fast, good enough to pick operations; replayable by its seed.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

#[allow(dead_code)] // each test binary uses its own subset
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }

    /// `k` distinct values of `0..n`, in random order.
    pub fn distinct(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut pool: Vec<usize> = (0..n).collect();
        (0..k.min(n))
            .map(|_| pool.remove(self.below(pool.len())))
            .collect()
    }
}
