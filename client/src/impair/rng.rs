//! The one seeded PRNG every random choice comes from, and the
//! probabilities it draws against.

use std::fmt;

/// splitmix64: tiny, fast, and the same numbers on every platform, which is
/// all a reproducible impairment needs (it is not for secrets).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0). The modulo bias is
    /// below 2^-40 for the bounds used here, far under any loss rate.
    pub fn below(&mut self, bound: u64) -> u64 {
        match bound {
            0 => 0,
            _ => self.next_u64() % bound,
        }
    }

    /// True with the given probability.
    pub fn chance(&mut self, probability: Percent) -> bool {
        self.below(Percent::SCALE) < u64::from(probability.per_million)
    }
}

/// A probability, kept in parts per million so that decisions are integer
/// arithmetic and reproduce exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percent {
    per_million: u32,
}

impl Percent {
    const SCALE: u64 = 1_000_000;

    pub fn from_per_million(per_million: u32) -> Self {
        Self {
            per_million: per_million.min(Self::SCALE as u32),
        }
    }

    pub fn is_zero(self) -> bool {
        self.per_million == 0
    }
}

impl std::str::FromStr for Percent {
    type Err = String;

    /// `20`, `20%` or `2.5`: a percentage from 0 to 100.
    fn from_str(text: &str) -> Result<Self, String> {
        let number = text.trim().trim_end_matches('%');
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a percentage (0 to 100)"))?;
        if !(0.0..=100.0).contains(&value) {
            return Err(format!("{text:?} is not a percentage (0 to 100)"));
        }
        // Within 0..=100 the product fits a u32; rounding keeps 0.0001 % exact.
        Ok(Self::from_per_million((value * 10_000.0).round() as u32))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", f64::from(self.per_million) / 10_000.0)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A percentage as the command line writes it; the fate tests use it too.
    pub(crate) fn pct(text: &str) -> Percent {
        text.parse().unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_numbers_and_another_seed_others() {
        let take = |seed| {
            let mut rng = Rng::new(seed);
            (0..64).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(take(7), take(7));
        assert_ne!(take(7), take(8));
    }

    #[test]
    fn splitmix64_matches_its_reference_output() {
        // The first outputs of splitmix64 seeded with 0 (Vigna's reference code),
        // so the fates of a seed never change between builds or platforms.
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn below_stays_below_its_bound_and_zero_is_zero() {
        let mut rng = Rng::new(3);
        assert!((0..10_000).all(|_| rng.below(7) < 7));
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn percentages_parse_with_or_without_the_sign_and_refuse_the_rest() {
        assert_eq!(pct("20"), Percent::from_per_million(200_000));
        assert_eq!(pct("20%"), Percent::from_per_million(200_000));
        assert_eq!(pct("0.5"), Percent::from_per_million(5_000));
        assert_eq!(pct("100"), Percent::from_per_million(1_000_000));
        for bad in ["-1", "101", "abc", "", "NaN", "inf"] {
            assert!(bad.parse::<Percent>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn chance_hits_close_to_its_rate() {
        let mut rng = Rng::new(11);
        let hits = (0..100_000).filter(|_| rng.chance(pct("20"))).count();
        assert!((19_000..21_000).contains(&hits), "{hits}");
        assert!((0..1000).all(|_| !rng.chance(pct("0"))));
        assert!((0..1000).all(|_| rng.chance(pct("100"))));
    }
}
