//! Which dimensions grew beyond their bounds: a small set of dimensions, and the comparison of a
//! reading with a baseline.

use crate::check::config::Config;
use crate::check::report::Dimension;
use crate::check::resources::Counts;
use crate::counting::heap::Heap;

/// A set of dimensions. A bit set, so that it can be built between heap readings without
/// allocating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Dims(u8);

/// Every dimension, in the order reports list them.
const ORDER: [Dimension; 6] = [
    Dimension::Heap,
    Dimension::Peak,
    Dimension::Threads,
    Dimension::Fds,
    Dimension::Tasks,
    Dimension::Mapped,
];

impl Dims {
    fn bit(d: Dimension) -> u8 {
        1 << ORDER
            .iter()
            .position(|&o| o == d)
            .expect("every dimension is listed")
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
        ORDER.into_iter().filter(|&d| self.contains(d)).collect()
    }
}

/// Whether `later - earlier` is more than `max` (in i128, so that `u64::MAX` bounds work).
pub(crate) fn grew(earlier: i64, later: i64, max: u64) -> bool {
    i128::from(later) - i128::from(earlier) > i128::from(max)
}

/// The readings a window starts from, and the bounds.
pub(crate) struct Baseline<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) heap: Heap,
    pub(crate) counts: Counts,
}

impl Baseline<'_> {
    /// The dimensions (heap, threads, fds, tasks, mapped) whose growth from the baseline to these
    /// readings exceeds its bound.
    pub(crate) fn over(&self, heap: Heap, counts: &Counts) -> Dims {
        let c = self.cfg;
        let mut dims = Dims::default();
        if grew(self.heap.bytes, heap.bytes, c.max_bytes)
            || grew(self.heap.blocks, heap.blocks, c.max_blocks)
        {
            dims = dims.with(Dimension::Heap);
        }
        dims.and_counts(c, &self.counts, counts)
    }
}

/// The counted dimensions, with their bounds, in the order of [`Counts::pairs`].
pub(crate) fn count_bounds(c: &Config) -> [(Dimension, u64); 4] {
    [
        (Dimension::Threads, c.max_threads),
        (Dimension::Fds, c.max_fds),
        (Dimension::Tasks, c.max_tasks),
        (Dimension::Mapped, c.max_mapped_bytes),
    ]
}

impl Dims {
    /// These dimensions and the counted ones (threads, fds, tasks, mapped) that grew from
    /// `earlier` to `later` by more than their bounds.
    pub(crate) fn and_counts(self, c: &Config, earlier: &Counts, later: &Counts) -> Dims {
        let mut dims = self;
        for (pair, (dim, max)) in earlier.pairs(later).into_iter().zip(count_bounds(c)) {
            if pair.is_some_and(|(b, a)| grew(b, a, max)) {
                dims = dims.with(dim);
            }
        }
        dims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
