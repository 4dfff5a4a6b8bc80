//! The samples kept: a ring buffer allocated up front.

use super::Sample;

/// A ring buffer of samples with its capacity allocated up front.
pub(super) struct Ring {
    pub(super) buf: Vec<Sample>,
    /// Where the next sample goes once the buffer is full.
    next: usize,
}

impl Ring {
    pub(super) fn with_capacity(cap: usize) -> Ring {
        Ring {
            buf: Vec::with_capacity(cap.max(1)),
            next: 0,
        }
    }

    pub(super) fn push(&mut self, s: Sample) {
        if self.buf.len() < self.buf.capacity() {
            self.buf.push(s);
        } else {
            self.buf[self.next] = s;
            self.next = (self.next + 1) % self.buf.len();
        }
    }

    /// The last `n` samples (all, if fewer), oldest first.
    pub(super) fn iter_last(&self, n: usize) -> impl Iterator<Item = Sample> + '_ {
        let len = self.buf.len();
        let n = n.min(len);
        // Once full, the oldest sample is at `next`; before that, at 0 (and `next` is 0).
        (len - n..len).map(move |i| self.buf[(self.next + i) % len])
    }
}
