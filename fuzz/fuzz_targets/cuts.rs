//! Where the chunking-invariance targets (`sse_frames`, `intent_scanner`) cut their input: a
//! module they share, not a target.

/// Piece lengths from 1 to `max` that cover `input`, from an xorshift generator seeded with the
/// input's FNV-1a hash: the same input is always cut the same way (a crash replays), and each
/// mutation of it tries other cuts.
pub fn piece_lengths(input: &[u8], max: u64) -> Vec<usize> {
    let mut state = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    }) | 1;
    let mut lengths = Vec::new();
    let mut total = 0;
    while total < input.len() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let length = usize::try_from(state % max).unwrap_or(0) + 1;
        lengths.push(length);
        total += length;
    }
    lengths
}
