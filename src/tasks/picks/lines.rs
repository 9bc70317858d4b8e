//! Lines of an async byte stream, borrowed from the read buffer where they fit in it.

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Longest line accepted: a bound on memory, far above any real batch output line.
pub const MAX_LINE_BYTES: usize = 16 << 20;

pub enum LineError {
    Io(std::io::Error),
    TooLong,
}

/// Splits a [`BufReader`] into lines without copying those that lie whole in its buffer; a
/// line that straddles two fills is gathered in `carry`. `\n` ends a line, a `\r` before it is
/// dropped, and a last line without `\n` still counts.
pub struct LineReader<R> {
    reader: BufReader<R>,
    carry: Vec<u8>,
    /// Bytes of the reader's buffer handed out by the last call, consumed on the next one.
    pending: usize,
    /// Lines handed out so far (the number of the current one, from 1).
    pub line: u64,
}

enum Step {
    Whole(usize),
    Gathered,
    More,
    End,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(reader: BufReader<R>) -> Self {
        LineReader { reader, carry: Vec::new(), pending: 0, line: 0 }
    }

    pub async fn next_line(&mut self) -> Result<Option<&[u8]>, LineError> {
        self.reader.consume(std::mem::take(&mut self.pending));
        self.carry.clear();
        loop {
            let buf = self.reader.fill_buf().await.map_err(LineError::Io)?;
            let step = if buf.is_empty() {
                if self.carry.is_empty() { Step::End } else { Step::Gathered }
            } else {
                match find_newline(buf) {
                    Some(at) if self.carry.is_empty() => Step::Whole(at),
                    Some(at) => {
                        self.carry.extend_from_slice(&buf[..at]);
                        self.reader.consume(at + 1);
                        Step::Gathered
                    }
                    None => {
                        let n = buf.len();
                        self.carry.extend_from_slice(buf);
                        self.reader.consume(n);
                        Step::More
                    }
                }
            };
            if self.carry.len() > MAX_LINE_BYTES {
                return Err(LineError::TooLong);
            }
            match step {
                Step::More => continue,
                Step::End => return Ok(None),
                Step::Whole(at) => {
                    self.pending = at + 1;
                    self.line += 1;
                    return Ok(Some(trim_cr(&self.reader.buffer()[..at])));
                }
                Step::Gathered => {
                    self.line += 1;
                    return Ok(Some(trim_cr(&self.carry)));
                }
            }
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The first `\n` in `buf`, eight bytes at a time.
pub fn find_newline(buf: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const NEWLINES: u64 = u64::from_ne_bytes([b'\n'; 8]);
    let mut chunks = buf.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])) ^ NEWLINES;
        // Sets the high bit of the lowest zero byte (bits above it may be wrong, never below).
        let zero = word.wrapping_sub(ONES) & !word & HIGHS;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks.remainder().iter().position(|&b| b == b'\n').map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_search_matches_position() {
        let mut data = vec![b'a'; 40];
        for i in 0..40 {
            data[i] = b'\n';
            assert_eq!(find_newline(&data), Some(i));
            assert_eq!(find_newline(&data[..i]), None);
            data[i] = 0x8a;
        }
        assert_eq!(find_newline(&[0x0b, 0x8a, 0x0a]), Some(2));
    }

    #[tokio::test]
    async fn lines_across_small_buffers() {
        let text = b"first\r\nsecond line here\n\nlast";
        for cap in 1..12 {
            let mut lines = LineReader::new(tokio::io::BufReader::with_capacity(cap, &text[..]));
            let mut got = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                got.push(String::from_utf8(line.to_vec()).unwrap());
            }
            assert_eq!(got, ["first", "second line here", "", "last"], "capacity {cap}");
        }
    }
}
