//! What a check measures, by name: the dimensions a verdict speaks of, the measures that are
//! counted for them (the heap has two: bytes and blocks), and [`PerMeasure`], one value for each
//! measure, so that counts, bounds, growth and decisions are indexed by name, never by position.
//!
//! `PerMeasure` is a fixed array: building, reading and comparing one allocates nothing, so it can
//! be used between heap readings.

use std::fmt;
use std::ops::{Index, IndexMut};

/// A measured dimension.
///
/// The order of the variants is the order reports list them in.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    /// Live heap bytes and blocks.
    Heap,
    /// The highest live heap within a run.
    Peak,
    /// Live OS threads.
    Threads,
    /// Open file descriptors.
    Fds,
    /// Alive async tasks on the watched runtimes (cargo feature `tokio`).
    Tasks,
    /// Live bytes of anonymous `mmap` made outside the allocator (cargo feature `ffi`).
    Mapped,
}

impl Dimension {
    /// Every dimension, in the order reports list them.
    pub const ALL: [Dimension; 6] = [
        Dimension::Heap,
        Dimension::Peak,
        Dimension::Threads,
        Dimension::Fds,
        Dimension::Tasks,
        Dimension::Mapped,
    ];

    /// The word reports use: `heap`, `peak`, `threads`, `fds`, `tasks`, `mapped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Heap => "heap",
            Dimension::Peak => "peak",
            Dimension::Threads => "threads",
            Dimension::Fds => "fds",
            Dimension::Tasks => "tasks",
            Dimension::Mapped => "mapped",
        }
    }

    /// The measures counted for this dimension, in report order: bytes and blocks for the heap,
    /// none for the peak (a high-water mark, not a count), one for each of the others.
    pub fn measures(self) -> &'static [Measure] {
        match self {
            Dimension::Heap => &[Measure::Bytes, Measure::Blocks],
            Dimension::Peak => &[],
            Dimension::Threads => &[Measure::Threads],
            Dimension::Fds => &[Measure::Fds],
            Dimension::Tasks => &[Measure::Tasks],
            Dimension::Mapped => &[Measure::Mapped],
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A counted quantity: a number read before and after the measured runs, with a bound on its
/// growth. Each belongs to a [`Dimension`].
///
/// The order of the variants is the order reports list them in.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Measure {
    /// Live heap bytes (bound: `max_bytes`).
    Bytes,
    /// Live heap blocks (bound: `max_blocks`).
    Blocks,
    /// Live OS threads (bound: `max_threads`).
    Threads,
    /// Open file descriptors (bound: `max_fds`).
    Fds,
    /// Alive async tasks on the watched runtimes (bound: `max_tasks`).
    Tasks,
    /// Live bytes of anonymous `mmap` made outside the allocator (bound: `max_mapped_bytes`).
    Mapped,
}

/// How many measures there are.
const N: usize = 6;

impl Measure {
    /// Every measure, in the order reports list them.
    pub const ALL: [Measure; N] = [
        Measure::Bytes,
        Measure::Blocks,
        Measure::Threads,
        Measure::Fds,
        Measure::Tasks,
        Measure::Mapped,
    ];

    /// The dimension this measure belongs to.
    pub fn dimension(self) -> Dimension {
        match self {
            Measure::Bytes | Measure::Blocks => Dimension::Heap,
            Measure::Threads => Dimension::Threads,
            Measure::Fds => Dimension::Fds,
            Measure::Tasks => Dimension::Tasks,
            Measure::Mapped => Dimension::Mapped,
        }
    }

    /// The name of its bound, as `Config` and `#[no_leak(...)]` spell it: `max_bytes`,
    /// `max_blocks`, `max_threads`, `max_fds`, `max_tasks`, `max_mapped_bytes`.
    pub fn bound_name(self) -> &'static str {
        match self {
            Measure::Bytes => "max_bytes",
            Measure::Blocks => "max_blocks",
            Measure::Threads => "max_threads",
            Measure::Fds => "max_fds",
            Measure::Tasks => "max_tasks",
            Measure::Mapped => "max_mapped_bytes",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One value for each [`Measure`]: indexed by the measure (`values[Measure::Fds]`), iterated in
/// report order. A fixed array: it never allocates.
///
/// ```
/// use no_leak::report::{Measure, PerMeasure};
///
/// let mut grown = PerMeasure::from_fn(|_| 0i64);
/// grown[Measure::Fds] += 2;
/// let twice = grown.map(|_, n| n * 2);
/// assert_eq!(twice[Measure::Fds], 4);
/// assert_eq!(twice.iter().filter(|&(_, &n)| n > 0).count(), 1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PerMeasure<T>(pub(crate) [T; N]);

impl<T> PerMeasure<T> {
    /// The value `f` gives each measure.
    pub fn from_fn(mut f: impl FnMut(Measure) -> T) -> PerMeasure<T> {
        PerMeasure(Measure::ALL.map(&mut f))
    }

    /// Each value passed through `f` with its measure.
    pub fn map<U>(self, mut f: impl FnMut(Measure, T) -> U) -> PerMeasure<U> {
        let mut i = 0;
        PerMeasure(self.0.map(|v| {
            let m = Measure::ALL[i];
            i += 1;
            f(m, v)
        }))
    }

    /// Each measure with its value, in report order.
    pub fn iter(&self) -> impl Iterator<Item = (Measure, &T)> + '_ {
        Measure::ALL.into_iter().zip(self.0.iter())
    }
}

impl<T: Copy> PerMeasure<T> {
    /// The same value for every measure.
    pub const fn splat(value: T) -> PerMeasure<T> {
        PerMeasure([value; N])
    }

    /// The values of `self` and `other` side by side.
    pub fn zip<U: Copy>(self, other: PerMeasure<U>) -> PerMeasure<(T, U)> {
        self.map(|m, v| (v, other[m]))
    }
}

impl PerMeasure<bool> {
    /// The measures whose value is true, in report order.
    pub fn measures(&self) -> impl Iterator<Item = Measure> + '_ {
        self.iter().filter(|&(_, &on)| on).map(|(m, _)| m)
    }

    /// Whether any measure is true.
    pub fn any(&self) -> bool {
        self.0.contains(&true)
    }

    /// Whether a measure of `dim` is true.
    pub fn any_of(&self, dim: Dimension) -> bool {
        dim.measures().iter().any(|&m| self[m])
    }
}

impl<T> Index<Measure> for PerMeasure<T> {
    type Output = T;

    fn index(&self, m: Measure) -> &T {
        &self.0[m.index()]
    }
}

impl<T> IndexMut<Measure> for PerMeasure<T> {
    fn index_mut(&mut self, m: Measure) -> &mut T {
        &mut self.0[m.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_measure_has_its_own_slot() {
        let mut p = PerMeasure::splat(0);
        for (i, m) in Measure::ALL.into_iter().enumerate() {
            p[m] = i;
        }
        for (i, m) in Measure::ALL.into_iter().enumerate() {
            assert_eq!(p[m], i, "{m:?}");
        }
        let names = PerMeasure::from_fn(|m| m.bound_name());
        assert_eq!(names[Measure::Mapped], "max_mapped_bytes");
        assert_eq!(names[Measure::Blocks], "max_blocks");
    }

    #[test]
    fn iteration_and_map_keep_report_order() {
        let p = PerMeasure::from_fn(|m| m as usize * 10);
        let order: Vec<Measure> = p.iter().map(|(m, _)| m).collect();
        assert_eq!(order, Measure::ALL);
        let mapped = p.map(|m, v| (m, v + 1));
        for (m, &(n, v)) in mapped.iter() {
            assert_eq!((n, v), (m, m as usize * 10 + 1));
        }
        let zipped = p.zip(PerMeasure::splat('x'));
        assert_eq!(zipped[Measure::Tasks], (40, 'x'));
    }

    #[test]
    fn measures_belong_to_their_dimensions_in_report_order() {
        for d in Dimension::ALL {
            for m in d.measures() {
                assert_eq!(m.dimension(), d);
            }
        }
        let listed: Vec<Measure> = Dimension::ALL
            .iter()
            .flat_map(|d| d.measures().iter().copied())
            .collect();
        assert_eq!(listed, Measure::ALL, "every measure once, in report order");
        let mut grew = PerMeasure::splat(false);
        grew[Measure::Blocks] = true;
        grew[Measure::Fds] = true;
        assert!(grew.any_of(Dimension::Heap) && !grew.any_of(Dimension::Threads));
        assert_eq!(
            grew.measures().collect::<Vec<_>>(),
            [Measure::Blocks, Measure::Fds]
        );
    }
}
