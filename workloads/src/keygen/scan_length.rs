//! Scan lengths (YCSB's `scanlengthdistribution`): uniform or zipfian over
//! `minscanlength..=maxscanlength`.

use rand_chacha::ChaCha8Rng;

use super::uniform::UniformGenerator;
use super::zipfian::ZipfianGenerator;

/// Chooses how many records a scan asks for.
#[derive(Debug, Clone)]
pub enum ScanLengthGenerator {
    /// Every length in the range equally likely.
    Uniform(UniformGenerator),
    /// Zipfian over the range (θ = 0.99): the shortest scan is the most likely.
    Zipfian(ZipfianGenerator),
}

impl ScanLengthGenerator {
    /// Uniform over `min..=max`.
    pub fn uniform(min: u64, max: u64) -> Self {
        Self::Uniform(UniformGenerator::new(min, max))
    }

    /// Zipfian over `min..=max`.
    pub fn zipfian(min: u64, max: u64) -> Self {
        Self::Zipfian(ZipfianGenerator::new(min, max))
    }

    /// The next scan length.
    pub fn next_value(&mut self, rng: &mut ChaCha8Rng) -> u64 {
        match self {
            Self::Uniform(uniform) => uniform.next_value(rng),
            Self::Zipfian(zipfian) => zipfian.next_value(rng),
        }
    }
}
