//! UTF-8 facts about a byte stream that may be cut anywhere: where decoding is settled, and
//! whether the character before or after a position is a word character.
//!
//! Every answer depends only on the bytes, never on where a chunk ended, which is what keeps
//! detections and released text identical however the stream is split.

/// A word character for `whole_word`: alphanumeric (Unicode) or `_`.
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_continuation(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}

/// Counts the characters that start in `bytes` (non-continuation bytes). A character split
/// across chunks is counted in the chunk holding its first byte.
pub(crate) fn count_char_starts(bytes: &[u8]) -> u64 {
    // Eight bytes at a time: a continuation byte is 0b10xx_xxxx, so its bit 7 is set and its
    // bit 6 (shifted into bit 7's place) is clear.
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut continuations: u64 = (&mut words)
        .map(|word| {
            let word = <[u8; 8]>::try_from(word).map_or(0, u64::from_le_bytes);
            u64::from((word & HIGH_BITS & !(word << 1)).count_ones())
        })
        .sum();
    continuations += words
        .remainder()
        .iter()
        .map(|&byte| u64::from(is_continuation(byte)))
        .sum::<u64>();
    bytes.len() as u64 - continuations
}

/// The length of `bytes` minus an incomplete character at its end, if the tail could still
/// become a valid character once more bytes arrive. Cutting the text there never changes how
/// it decodes.
pub(crate) fn settled_len(bytes: &[u8]) -> usize {
    if bytes.last().is_none_or(u8::is_ascii) {
        return bytes.len();
    }
    let tail_start = bytes.len().saturating_sub(3);
    match bytes[tail_start..]
        .iter()
        .rposition(|&byte| !is_continuation(byte))
    {
        Some(offset) => {
            let lead = tail_start + offset;
            match std::str::from_utf8(&bytes[lead..]) {
                Err(error) if error.error_len().is_none() => lead + error.valid_up_to(),
                _ => bytes.len(),
            }
        }
        None => bytes.len(),
    }
}

/// Whether the character that starts at `at` is a word character: `Some(false)` for invalid
/// bytes and, when `at_end` (the text ends there or is cut), for an incomplete or missing
/// character; `None` while more bytes are needed to tell.
pub(crate) fn word_char_at(bytes: &[u8], at: usize, at_end: bool) -> Option<bool> {
    let window = &bytes[at.min(bytes.len())..bytes.len().min(at.saturating_add(4))];
    if window.is_empty() {
        return if at_end { Some(false) } else { None };
    }
    match std::str::from_utf8(window) {
        Ok(text) => text.chars().next().map(is_word_char),
        Err(error) if error.valid_up_to() > 0 => {
            // The prefix is valid UTF-8, so `valid_up_to` is a char boundary.
            window
                .get(..error.valid_up_to())
                .and_then(|valid| std::str::from_utf8(valid).ok())
                .and_then(|text| text.chars().next())
                .map(is_word_char)
        }
        Err(error) => match error.error_len() {
            Some(_) => Some(false),
            None if at_end => Some(false),
            None => None,
        },
    }
}

/// Whether the character that ends at `at` is a word character. Nothing before `at` (the start
/// of the text) and invalid bytes are not.
pub(crate) fn word_char_before(bytes: &[u8], at: usize) -> bool {
    let at = at.min(bytes.len());
    let earliest = at.saturating_sub(4);
    let Some(lead) = (earliest..at)
        .rev()
        .find(|&index| !is_continuation(bytes[index]))
    else {
        return false;
    };
    std::str::from_utf8(&bytes[lead..at])
        .ok()
        .and_then(|text| text.chars().next())
        .is_some_and(is_word_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_len_holds_back_only_a_completable_tail() {
        let euro = "€".as_bytes();
        assert_eq!(settled_len(b"abc"), 3);
        assert_eq!(settled_len(&[b'a', euro[0]]), 1);
        assert_eq!(settled_len(&[b'a', euro[0], euro[1]]), 1);
        assert_eq!(settled_len(&[b'a', euro[0], euro[1], euro[2]]), 4);
        // 0xFF can never start a character: nothing to wait for.
        assert_eq!(settled_len(&[b'a', 0xFF]), 2);
        // A lead byte followed by a non-continuation is already invalid.
        assert_eq!(settled_len(&[euro[0], b'a']), 2);
        assert_eq!(settled_len(&[]), 0);
    }

    #[test]
    fn word_char_at_waits_for_a_whole_character() {
        let text = "aé €_".as_bytes();
        assert_eq!(word_char_at(text, 0, false), Some(true));
        assert_eq!(word_char_at(text, 1, false), Some(true));
        assert_eq!(word_char_at(text, 3, false), Some(false));
        assert_eq!(word_char_at(text, 4, false), Some(false));
        assert_eq!(word_char_at(text, 7, false), Some(true));
        assert_eq!(word_char_at(text, 8, false), None);
        assert_eq!(word_char_at(text, 8, true), Some(false));
        assert_eq!(word_char_at(&text[..2], 1, false), None);
        assert_eq!(word_char_at(&text[..2], 1, true), Some(false));
        assert_eq!(word_char_at(&[0xFF, b'a'], 0, false), Some(false));
    }

    #[test]
    fn word_char_before_decodes_backwards() {
        let text = "é a".as_bytes();
        assert!(!word_char_before(text, 0));
        assert!(word_char_before(text, 2));
        assert!(!word_char_before(text, 3));
        assert!(word_char_before(text, 4));
        assert!(!word_char_before(&[0x80, 0x80], 2));
    }

    #[test]
    fn counts_characters_by_their_first_byte() {
        assert_eq!(count_char_starts("aé€😀".as_bytes()), 4);
        assert_eq!(count_char_starts(&"€".as_bytes()[1..]), 0);
        // Eight bytes at a time and the rest one by one, at every alignment.
        let text = "ab€😀é Zürich — ﬁ ok".repeat(3);
        let text = text.as_bytes();
        for start in 0..8 {
            for end in start..=text.len() {
                let slice = &text[start..end];
                let one_by_one = slice.iter().filter(|&&byte| byte & 0xC0 != 0x80).count();
                assert_eq!(count_char_starts(slice), one_by_one as u64);
            }
        }
    }
}
