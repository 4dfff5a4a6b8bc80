//! Which measures grew beyond their bounds, and so which dimensions: the comparison of a reading
//! with a baseline (made here, once, and recorded on the report), and a small set of dimensions.

use crate::check::config::Config;
use crate::check::measure::{Dimension, Measure, PerMeasure};
use crate::check::resources::Counts;

/// A set of dimensions. A bit set, so that it can be built between heap readings without
/// allocating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Dims(u8);

impl Dims {
    fn bit(d: Dimension) -> u8 {
        1 << (d as u8)
    }

    /// The dimensions of the measures that are true in `over`.
    pub(crate) fn of(over: &PerMeasure<bool>) -> Dims {
        over.measures()
            .fold(Dims::default(), |d, m| d.with(m.dimension()))
    }

    pub(crate) fn with(self, d: Dimension) -> Dims {
        Dims(self.0 | Dims::bit(d))
    }

    pub(crate) fn without(self, d: Dimension) -> Dims {
        Dims(self.0 & !Dims::bit(d))
    }

    pub(crate) fn contains(self, d: Dimension) -> bool {
        self.0 & Dims::bit(d) != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn and(self, other: Dims) -> Dims {
        Dims(self.0 & other.0)
    }

    pub(crate) fn minus(self, other: Dims) -> Dims {
        Dims(self.0 & !other.0)
    }

    /// The dimensions in report order.
    pub(crate) fn list(self) -> Vec<Dimension> {
        Dimension::ALL
            .into_iter()
            .filter(|&d| self.contains(d))
            .collect()
    }
}

/// Whether `later - earlier` is more than `max` (in i128, so that `u64::MAX` bounds work).
pub(crate) fn grew(earlier: i64, later: i64, max: u64) -> bool {
    i128::from(later) - i128::from(earlier) > i128::from(max)
}

/// The measures that grew from `earlier` to `later` by more than their bounds; a measure not read
/// in both did not grow. Allocates nothing.
pub(crate) fn over(bounds: &PerMeasure<u64>, earlier: &Counts, later: &Counts) -> PerMeasure<bool> {
    PerMeasure::from_fn(|m: Measure| {
        earlier[m]
            .zip(later[m])
            .is_some_and(|(b, a)| grew(b, a, bounds[m]))
    })
}

/// The readings a window starts from (heap and counts), and the bounds.
pub(crate) struct Baseline<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) counts: Counts,
}

impl Baseline<'_> {
    /// The measures whose growth from the baseline to `now` exceeds its bound.
    pub(crate) fn over(&self, now: &Counts) -> PerMeasure<bool> {
        over(&self.cfg.bounds, &self.counts, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counting::heap::Heap;

    #[test]
    fn dims_keep_report_order() {
        let d = Dims::default()
            .with(Dimension::Fds)
            .with(Dimension::Heap)
            .with(Dimension::Tasks);
        assert_eq!(
            d.list(),
            vec![Dimension::Heap, Dimension::Fds, Dimension::Tasks]
        );
        assert!(d.without(Dimension::Heap).contains(Dimension::Fds));
        assert!(d.minus(d).is_empty());
    }

    #[test]
    fn growth_compares_in_i128() {
        assert!(!grew(i64::MIN, i64::MAX, u64::MAX));
        assert!(grew(0, 1, 0));
        assert!(!grew(5, 5, 0));
    }

    #[test]
    fn each_measure_is_held_to_its_own_bound() {
        let cfg = Config::new().max_bytes(64).max_fds(1);
        let mut before = Counts::splat(None).with_heap(Heap {
            bytes: 1000,
            blocks: 10,
        });
        before[Measure::Fds] = Some(3);
        before[Measure::Threads] = Some(2);
        let mut after = before.with_heap(Heap {
            bytes: 1064,
            blocks: 11,
        });
        after[Measure::Fds] = Some(4);
        after[Measure::Threads] = Some(3);
        after[Measure::Tasks] = Some(9); // not read before: not growth
        let baseline = Baseline {
            cfg: &cfg,
            counts: before,
        };
        let over = baseline.over(&after);
        let grown: Vec<Measure> = over.measures().collect();
        assert_eq!(grown, [Measure::Blocks, Measure::Threads], "{over:?}");
        assert_eq!(
            Dims::of(&over).list(),
            [Dimension::Heap, Dimension::Threads]
        );
    }
}
