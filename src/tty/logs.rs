//! The container log the shim keeps, in the CRI log format kubelet and
//! containerd use: one line per line of output,
//! `<RFC 3339 time> <stdout|stderr> <F|P> <content>`, where `P` marks a
//! piece of a longer line and `F` the end of one. `rt logs` reads it back.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::error::{Context, Error, Result};

/// A line longer than this is written in pieces.
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Turns chunks of output into log lines.
pub struct Writer<W: Write> {
    out: W,
    pending: [Vec<u8>; 2],
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer {
            out,
            pending: [Vec::new(), Vec::new()],
        }
    }

    /// Logs a chunk of one stream; a line left unfinished waits for more.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> std::io::Result<()> {
        let i = stream as usize;
        self.pending[i].extend_from_slice(data);
        while let Some(nl) = self.pending[i].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending[i].drain(..=nl).collect();
            let mut pieces = line[..line.len() - 1].chunks(MAX_LINE).peekable();
            if pieces.peek().is_none() {
                self.line(stream, b"", true)?;
            }
            while let Some(piece) = pieces.next() {
                self.line(stream, piece, pieces.peek().is_none())?;
            }
        }
        while self.pending[i].len() >= MAX_LINE {
            let piece: Vec<u8> = self.pending[i].drain(..MAX_LINE).collect();
            self.line(stream, &piece, false)?;
        }
        Ok(())
    }

    /// Writes what is left of unfinished lines (the output ended).
    pub fn finish(&mut self) -> std::io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.pending[stream as usize]);
            if !rest.is_empty() {
                self.line(stream, &rest, true)?;
            }
        }
        self.out.flush()
    }

    fn line(&mut self, stream: Stream, content: &[u8], full: bool) -> std::io::Result<()> {
        let time = humantime::format_rfc3339_nanos(SystemTime::now());
        let tag = if full { "F" } else { "P" };
        let mut rec = format!("{time} {} {tag} ", stream.name()).into_bytes();
        // A terminal's lines end in \r\n; the \r is not content.
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        rec.extend_from_slice(content);
        rec.push(b'\n');
        self.out.write_all(&rec)
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub time: SystemTime,
    pub stream: Stream,
    /// The end of a line of output (`F`), not a piece of one (`P`).
    pub full: bool,
    pub content: Vec<u8>,
}

impl Entry {
    fn parse(line: &[u8]) -> Option<Entry> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let mut parts = line.splitn(4, |&b| b == b' ');
        let time = std::str::from_utf8(parts.next()?).ok()?;
        let time = humantime::parse_rfc3339(time).ok()?;
        let stream = match parts.next()? {
            b"stdout" => Stream::Stdout,
            b"stderr" => Stream::Stderr,
            _ => return None,
        };
        let full = match parts.next()? {
            b"F" => true,
            b"P" => false,
            _ => return None,
        };
        Some(Entry {
            time,
            stream,
            full,
            content: parts.next().unwrap_or_default().to_vec(),
        })
    }

    /// The output as the container wrote it.
    pub fn output(&self) -> Vec<u8> {
        let mut out = self.content.clone();
        if self.full {
            out.push(b'\n');
        }
        out
    }
}

/// `--since`: an RFC 3339 time, or a duration before now (`10m`, `1h30m`).
pub fn parse_since(s: &str) -> Result<SystemTime> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    }
    let ago = humantime::parse_duration(s).map_err(|_| Error::InvalidArgument {
        arg: format!("--since {s:?}"),
        reason: "expected a time (2026-01-02T15:04:05Z), unix seconds, or a duration (10m)".into(),
    })?;
    Ok(SystemTime::now()
        .checked_sub(ago)
        .unwrap_or(SystemTime::UNIX_EPOCH))
}

/// Which lines `rt logs` shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since: Option<SystemTime>,
    pub tail: Option<usize>,
}

/// Reads the log: the entries the filter lets through, and the offset to
/// follow from.
pub fn read(path: &Path, filter: &Filter) -> Result<(Vec<Entry>, u64)> {
    let file = std::fs::File::open(path).with_ctx(|| format!("open {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut entries = Vec::new();
    let mut offset = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_ctx(|| format!("read {}", path.display()))?;
        // A line still being written is left for the follower.
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        offset += n as u64;
        if let Some(e) = Entry::parse(&line) {
            if filter.since.is_none_or(|s| e.time >= s) {
                entries.push(e);
            }
        }
    }
    if let Some(t) = filter.tail {
        // Count lines of output, not pieces of them.
        let mut full_seen = 0;
        let mut start = entries.len();
        while start > 0 {
            if entries[start - 1].full {
                if full_seen == t {
                    break;
                }
                full_seen += 1;
            }
            start -= 1;
        }
        entries.drain(..start);
    }
    Ok((entries, offset))
}

/// Reads entries written after `offset`; returns the new offset.
pub fn read_from(path: &Path, offset: u64, out: &mut Vec<Entry>) -> Result<u64> {
    let mut file = std::fs::File::open(path).with_ctx(|| format!("open {}", path.display()))?;
    file.seek(SeekFrom::Start(offset))
        .with_ctx(|| format!("seek {}", path.display()))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .with_ctx(|| format!("read {}", path.display()))?;
    let complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    for line in data[..complete].split_inclusive(|&b| b == b'\n') {
        if let Some(e) = Entry::parse(line) {
            out.push(e);
        }
    }
    Ok(offset + complete as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(chunks: &[(Stream, &[u8])]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        for (s, c) in chunks {
            w.write(*s, c).unwrap();
        }
        w.finish().unwrap();
        w.out
    }

    fn entries(log: &[u8]) -> Vec<Entry> {
        log.split_inclusive(|&b| b == b'\n')
            .map(|l| Entry::parse(l).expect("parses"))
            .collect()
    }

    #[test]
    fn lines_split_across_chunks_are_one_entry_per_stream() {
        let log = log_of(&[
            (Stream::Stdout, b"hel"),
            (Stream::Stderr, b"oops\n"),
            (Stream::Stdout, b"lo\nwor"),
            (Stream::Stdout, b"ld\r\nno newline"),
        ]);
        let e = entries(&log);
        let got: Vec<(Stream, &[u8], bool)> = e
            .iter()
            .map(|e| (e.stream, e.content.as_slice(), e.full))
            .collect();
        assert_eq!(
            got,
            vec![
                (Stream::Stderr, &b"oops"[..], true),
                (Stream::Stdout, &b"hello"[..], true),
                (Stream::Stdout, &b"world"[..], true),
                (Stream::Stdout, &b"no newline"[..], true),
            ]
        );
    }

    #[test]
    fn long_lines_are_written_in_pieces_and_read_back_whole() {
        let long = vec![b'x'; MAX_LINE + 10];
        let mut chunk = long.clone();
        chunk.push(b'\n');
        let log = log_of(&[(Stream::Stdout, &chunk)]);
        let e = entries(&log);
        assert_eq!(e.len(), 2);
        assert!(!e[0].full && e[1].full);
        let back: Vec<u8> = e.iter().flat_map(|e| e.output()).collect();
        assert_eq!(back, chunk);
    }

    #[test]
    fn tail_counts_lines_and_since_filters_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let old = "2020-01-01T00:00:00Z stdout F old\n";
        let new = log_of(&[(Stream::Stdout, b"a\nb\nc\n")]);
        let mut all = old.as_bytes().to_vec();
        all.extend_from_slice(&new);
        std::fs::write(&path, &all).unwrap();
        let (e, off) = read(
            &path,
            &Filter {
                tail: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(off, all.len() as u64);
        let text: Vec<&[u8]> = e.iter().map(|e| e.content.as_slice()).collect();
        assert_eq!(text, vec![&b"b"[..], b"c"]);
        let (e, _) = read(
            &path,
            &Filter {
                since: Some(parse_since("2021-01-01T00:00:00Z").unwrap()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(e.len(), 3);
        assert!(parse_since("yesterday-ish").is_err());
        assert!(parse_since("10m").unwrap() < SystemTime::now());
    }
}
