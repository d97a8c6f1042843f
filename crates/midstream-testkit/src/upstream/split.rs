//! Cutting a body into pieces at arbitrary byte offsets, as it is produced.

use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::scenario::Split;

/// Re-cuts a stream of frames into pieces of the lengths a [`Split`] asks for.
///
/// Holds at most one piece's worth of bytes plus the frame being cut.
#[derive(Debug)]
pub(crate) struct Splitter {
    pending: BytesMut,
    lengths: PieceLengths,
    next_length: usize,
}

#[derive(Debug)]
enum PieceLengths {
    Fixed(usize),
    Random { rng: Box<StdRng>, max: usize },
}

impl PieceLengths {
    fn next(&mut self) -> usize {
        match self {
            Self::Fixed(length) => *length,
            Self::Random { rng, max } => rng.random_range(1..=*max),
        }
    }
}

impl Splitter {
    pub(crate) fn new(split: Split) -> Self {
        let mut lengths = match split {
            Split::Bytes(length) => PieceLengths::Fixed(length.max(1)),
            Split::Random { seed, max } => PieceLengths::Random {
                rng: Box::new(StdRng::seed_from_u64(seed)),
                max: max.max(1),
            },
        };
        let next_length = lengths.next();
        Self {
            pending: BytesMut::new(),
            lengths,
            next_length,
        }
    }

    /// Appends the next bytes of the body.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The next complete piece, if enough bytes are pending.
    pub(crate) fn next_piece(&mut self) -> Option<Bytes> {
        if self.pending.len() < self.next_length {
            return None;
        }
        let piece = self.pending.split_to(self.next_length).freeze();
        self.next_length = self.lengths.next();
        Some(piece)
    }

    /// The remaining bytes, shorter than a piece, once the body has no more frames.
    pub(crate) fn flush(&mut self) -> Option<Bytes> {
        (!self.pending.is_empty()).then(|| self.pending.split().freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(split: Split, frames: &[&[u8]]) -> Vec<Bytes> {
        let mut splitter = Splitter::new(split);
        let mut pieces = Vec::new();
        for frame in frames {
            splitter.push(frame);
            while let Some(piece) = splitter.next_piece() {
                pieces.push(piece);
            }
        }
        pieces.extend(splitter.flush());
        pieces
    }

    #[test]
    fn fixed_pieces_cross_frame_boundaries() {
        let pieces = cut(Split::Bytes(4), &[b"abcdef", b"ghij"]);
        assert_eq!(pieces, [&b"abcd"[..], b"efgh", b"ij"]);
    }

    #[test]
    fn zero_is_read_as_one_byte() {
        assert_eq!(cut(Split::Bytes(0), &[b"ab"]).len(), 2);
    }

    #[test]
    fn random_pieces_are_reproducible_and_bounded() {
        let body = b"data: {\"content\":\"caf\xc3\xa9\"}\n\n".repeat(20);
        let split = Split::Random { seed: 7, max: 9 };
        let first = cut(split, &[&body]);
        assert_eq!(first, cut(split, &[&body]));
        assert!(first.iter().all(|piece| (1..=9).contains(&piece.len())));
        assert_eq!(first.concat(), body);
        assert_ne!(first, cut(Split::Random { seed: 8, max: 9 }, &[&body]));
    }
}
