//! The decisions, as pure functions of the impairments and the PRNG: the
//! fate of each datagram, the bit to flip, the cut, the delay and the order
//! a hold-back window is released in.

use std::time::Duration;

use super::impairments::Impairments;
use super::rng::Rng;

/// What becomes of one datagram on an impaired path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// The black hole has opened: nothing passes any more.
    Blackholed,
    /// Lost, as on a lossy link.
    Lost,
    /// Passes, perhaps damaged, perhaps twice.
    Passes {
        /// The bit to flip (0 = the first byte's lowest bit).
        flip_bit: Option<usize>,
        /// Sent twice (each copy gets its own delay).
        duplicated: bool,
    },
}

/// The fate of the `index`-th datagram (counted from 0 over the impaired
/// paths) of `len` bytes. The PRNG is drawn in a fixed order (loss, then
/// corruption, then duplication), so a seed replays the same fates.
pub fn decide(impairments: &Impairments, rng: &mut Rng, index: u64, len: usize) -> Fate {
    if impairments
        .blackhole_after
        .is_some_and(|after| index >= after)
    {
        return Fate::Blackholed;
    }
    if !impairments.loss.is_zero() && rng.chance(impairments.loss) {
        return Fate::Lost;
    }
    let flip_bit = (!impairments.corrupt.is_zero() && rng.chance(impairments.corrupt) && len > 0)
        .then(|| rng.below(len as u64 * 8) as usize);
    let duplicated = !impairments.duplicate.is_zero() && rng.chance(impairments.duplicate);
    Fate::Passes {
        flip_bit,
        duplicated,
    }
}

/// Flips one bit; a bit past the end is ignored.
pub fn flip_bit(datagram: &mut [u8], bit: usize) {
    if let Some(byte) = datagram.get_mut(bit / 8) {
        *byte ^= 1 << (bit % 8);
    }
}

/// Cuts the datagram to `size` bytes; true when it was longer.
pub fn truncate(datagram: &mut Vec<u8>, size: Option<usize>) -> bool {
    match size {
        Some(size) if datagram.len() > size => {
            datagram.truncate(size);
            true
        }
        _ => false,
    }
}

/// How long one datagram waits: the delay, moved uniformly by up to the
/// jitter either way, never below zero. No draw when there is no jitter.
pub fn delay_for(rng: &mut Rng, delay: Duration, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return delay;
    }
    // Clamped so that no Duration a caller passes can overflow the sums.
    let micros =
        |d: Duration| u64::try_from(d.as_micros()).map_or(u64::MAX / 4, |m| m.min(u64::MAX / 4));
    let span = micros(jitter);
    let offset = rng.below(2 * span + 1);
    Duration::from_micros((micros(delay) + offset).saturating_sub(span))
}

/// A random order for `n` held datagrams (Fisher–Yates): `order[i]` is the
/// arrival index of the datagram released `i`-th.
pub fn shuffle_order(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// How many datagrams an order releases out of their arrival place.
pub fn displaced(order: &[usize]) -> u64 {
    order
        .iter()
        .enumerate()
        .filter(|(i, arrival)| i != *arrival)
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impair::rng::tests::pct;

    fn with(configure: impl FnOnce(&mut Impairments)) -> Impairments {
        let mut impairments = Impairments::default();
        configure(&mut impairments);
        impairments
    }

    /// The fates of `n` datagrams of 1200 bytes.
    fn fates(impairments: &Impairments, n: u64) -> Vec<Fate> {
        let mut rng = Rng::new(impairments.seed);
        (0..n)
            .map(|i| decide(impairments, &mut rng, i, 1200))
            .collect()
    }

    #[test]
    fn no_impairment_passes_everything_untouched() {
        let expected = Fate::Passes {
            flip_bit: None,
            duplicated: false,
        };
        assert!(fates(&Impairments::default(), 1000)
            .iter()
            .all(|f| *f == expected));
    }

    #[test]
    fn loss_drops_about_its_rate_and_replays_exactly_for_a_seed() {
        let lossy = with(|i| {
            i.seed = 5;
            i.loss = pct("20");
        });
        let first = fates(&lossy, 10_000);
        let lost = first.iter().filter(|f| **f == Fate::Lost).count();
        assert!((1_800..2_200).contains(&lost), "{lost}");
        assert_eq!(first, fates(&lossy, 10_000));
        let other_seed = with(|i| {
            i.seed = 6;
            i.loss = pct("20");
        });
        assert_ne!(first, fates(&other_seed, 10_000));
    }

    #[test]
    fn duplication_marks_about_its_rate() {
        let dup = with(|i| i.duplicate = pct("10"));
        let copies = fates(&dup, 10_000)
            .iter()
            .filter(|f| {
                matches!(
                    f,
                    Fate::Passes {
                        duplicated: true,
                        ..
                    }
                )
            })
            .count();
        assert!((800..1_200).contains(&copies), "{copies}");
    }

    #[test]
    fn corruption_picks_a_bit_inside_the_datagram() {
        let corrupt = with(|i| i.corrupt = pct("50"));
        let mut rng = Rng::new(1);
        let bits: Vec<usize> = (0..1000)
            .filter_map(|n| match decide(&corrupt, &mut rng, n, 3) {
                Fate::Passes { flip_bit, .. } => flip_bit,
                _ => None,
            })
            .collect();
        assert!((400..600).contains(&bits.len()), "{}", bits.len());
        assert!(bits.iter().all(|b| *b < 24));
        // An empty datagram has no bit to flip.
        assert!(matches!(
            decide(&corrupt, &mut rng, 0, 0),
            Fate::Passes { flip_bit: None, .. }
        ));
    }

    #[test]
    fn flip_bit_changes_exactly_one_bit_and_ignores_bits_past_the_end() {
        let mut datagram = vec![0u8; 4];
        flip_bit(&mut datagram, 9);
        assert_eq!(datagram, [0, 2, 0, 0]);
        flip_bit(&mut datagram, 9);
        assert_eq!(datagram, [0, 0, 0, 0]);
        flip_bit(&mut datagram, 32);
        assert_eq!(datagram, [0, 0, 0, 0]);
    }

    #[test]
    fn truncation_cuts_only_longer_datagrams() {
        let mut long = vec![1u8; 1200];
        assert!(truncate(&mut long, Some(1000)));
        assert_eq!(long.len(), 1000);
        let mut short = vec![1u8; 500];
        assert!(!truncate(&mut short, Some(1000)));
        assert_eq!(short.len(), 500);
        assert!(!truncate(&mut short, None));
    }

    #[test]
    fn the_black_hole_opens_after_n_datagrams_and_stays_open() {
        let hole = with(|i| i.blackhole_after = Some(3));
        let got = fates(&hole, 6);
        assert!(got[..3].iter().all(|f| matches!(f, Fate::Passes { .. })));
        assert!(got[3..].iter().all(|f| *f == Fate::Blackholed));
        let at_once = with(|i| i.blackhole_after = Some(0));
        assert_eq!(fates(&at_once, 1), [Fate::Blackholed]);
    }

    #[test]
    fn delay_without_jitter_is_exact_and_jitter_stays_in_its_span() {
        let mut rng = Rng::new(9);
        let ms = Duration::from_millis;
        assert_eq!(delay_for(&mut rng, ms(30), ms(0)), ms(30));
        let delays: Vec<Duration> = (0..1000)
            .map(|_| delay_for(&mut rng, ms(30), ms(10)))
            .collect();
        assert!(delays.iter().all(|d| *d >= ms(20) && *d <= ms(40)));
        assert!(delays.iter().any(|d| *d < ms(25)) && delays.iter().any(|d| *d > ms(35)));
        // Jitter larger than the delay never makes a negative wait.
        assert!((0..1000).all(|_| delay_for(&mut rng, ms(1), ms(10)) <= ms(11)));
        // Absurd durations from a library caller do not overflow.
        let _ = delay_for(&mut rng, Duration::MAX, Duration::MAX);
    }

    #[test]
    fn a_shuffle_is_a_permutation_that_replays_for_a_seed() {
        let order = shuffle_order(&mut Rng::new(4), 8);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..8).collect::<Vec<_>>());
        assert_eq!(order, shuffle_order(&mut Rng::new(4), 8));
        assert!(displaced(&order) > 0, "{order:?}");
        assert_eq!(displaced(&[0, 1, 2]), 0);
        assert_eq!(displaced(&[1, 0, 2]), 2);
        assert!(shuffle_order(&mut Rng::new(4), 0).is_empty());
    }
}
