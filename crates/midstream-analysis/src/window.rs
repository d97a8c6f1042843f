//! The bounded look-back buffer of a stream.
//!
//! Matching never rescans the stream: it only looks back at the last few hundred bytes (the
//! longest rule bound plus a few bytes of context). The buffer keeps those bytes, plus the text
//! a guarded scope has not released yet, and compacts itself by moving the kept tail to the
//! front once it has grown by at least its own size again, so each byte is copied O(1) times.

/// A sliding window over the stream: `bytes()[i]` is the stream's byte at `offset() + i`.
#[derive(Debug)]
pub(crate) struct Window {
    buf: Vec<u8>,
    offset: u64,
}

impl Window {
    /// A window that will hold `keep` bytes of history plus chunks of at most `chunk` bytes
    /// without reallocating: the capacity is reserved up front.
    pub(crate) fn new(keep: usize, chunk: usize) -> Window {
        Window {
            buf: Vec::with_capacity(2 * keep + chunk),
            offset: 0,
        }
    }

    /// The stream position of `bytes()[0]`.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The buffered bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The index in `bytes()` of stream position `position`, which must be buffered.
    pub(crate) fn index(&self, position: u64) -> usize {
        usize::try_from(position.saturating_sub(self.offset))
            .unwrap_or(usize::MAX)
            .min(self.buf.len())
    }

    /// The buffered bytes from stream position `from` to `to` (clamped to what is buffered).
    pub(crate) fn slice(&self, from: u64, to: u64) -> &[u8] {
        let end = self.index(to);
        &self.buf[self.index(from).min(end)..end]
    }

    /// Appends `bytes`, first dropping everything before stream position `keep_from` if the
    /// buffer would otherwise grow past its reserved capacity.
    pub(crate) fn push(&mut self, bytes: &[u8], keep_from: u64) {
        if self.buf.len() + bytes.len() > self.buf.capacity() {
            let drop = self.index(keep_from);
            self.buf.drain(..drop);
            self.offset += drop as u64;
        }
        self.buf.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_stable_across_compaction() {
        let mut window = Window::new(4, 4);
        let capacity = window.buf.capacity();
        for round in 0..50u8 {
            let fed = u64::from(round) * 3;
            window.push(&[round; 3], fed.saturating_sub(4));
            assert_eq!(window.bytes()[window.index(fed)], round);
            assert!(window.offset() <= fed.saturating_sub(4));
            assert_eq!(window.slice(fed, fed + 3), &[round; 3]);
        }
        assert_eq!(window.buf.capacity(), capacity, "no reallocation");
    }
}
