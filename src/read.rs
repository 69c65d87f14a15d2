//! Owns the read stage core: from a ready path to a decoded [`RawDoc`], or a clear error.
//!
//! Every way a dropped file can be bad ends here as a [`ReadError`]: vanished, unreadable, a
//! directory, a symlink out of the drop folder, empty, too large, a gzip bomb, or binary.
//! Text in any charset is decoded ([`crate::decode`]).

use crate::model::{FileKey, Format, RawDoc, SourceInfo};
use flate2::read::MultiGzDecoder;
use std::fs::Metadata;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

mod open;
mod order;
mod stage;
pub use open::{
    display_path, file_key_at, fingerprint_bytes, is_transient, probe, raise_fd_limit, wants_probe,
    KeyCache, Probe,
};
pub use order::{sort_by_path, sort_paths};
pub use stage::{feed_list, spawn_read_stage, ReadStage};

/// Why a file could not become a document.
#[derive(Debug, Error)]
pub enum ReadError {
    #[error("file vanished before it could be read")]
    Vanished,
    #[error("cannot read file: {0}")]
    Unreadable(io::Error),
    #[error("not a regular file")]
    NotAFile,
    #[error("symlink points outside the drop folder: {0}")]
    SymlinkOutside(PathBuf),
    #[error("file is empty")]
    Empty,
    #[error("file is {size} bytes, over the cap of {cap} bytes")]
    TooLarge { size: u64, cap: u64 },
    #[error("gzip inflates past the cap of {cap} bytes")]
    InflatedTooLarge { cap: u64 },
    #[error("corrupt gzip stream: {0}")]
    CorruptGzip(io::Error),
    #[error("binary content ({0})")]
    Binary(crate::decode::Binary),
    #[error("no text after decoding")]
    NoText,
    #[error("the folder holding the file vanished")]
    ParentVanished,
    #[error("sparse file: a hole at byte {data} of {size}")]
    Sparse { data: u64, size: u64 },
    #[error("cannot allocate {0} bytes to read the file")]
    OutOfMemory(u64),
    #[error("reading was cancelled (time budget spent)")]
    Cancelled,
}

/// Limits the read stage enforces.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    pub max_file_bytes: u64,
    pub max_inflated_bytes: u64,
}

/// Returns the identity of a file version from its metadata alone (fingerprint unknown; see
/// [`file_key_at`] for the full key).
pub fn file_key(meta: &Metadata) -> FileKey {
    FileKey {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
        mtime_ns: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        fp: 0,
    }
}

/// Returns whether a file name is never read: dotfiles and `*.tmp`, `*.part`, `*~`.
pub fn is_ignored_name(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(".tmp")
        || name.ends_with(".part")
        || name.ends_with('~')
}

/// Returns whether a name carries a document extension (`.txt`, `.html`, `.htm`, `.gz`): a
/// folder named so is taken for a misdropped file and reported, not silently skipped.
pub fn has_document_extension(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [".txt", ".html", ".htm", ".gz"]
        .iter()
        .any(|e| n.ends_with(e))
}

/// Reads and decodes `path`. `root` is the canonical drop folder the opened descriptor must
/// lie in (`None` for paths named on the command line). `info` is filled in as far as reading
/// got, and `fp` with the file's content fingerprint (as [`probe`] computes it) once the file
/// was opened; it stays 0 when it could not be.
pub fn read_file(
    path: &Path,
    root: Option<&Path>,
    limits: ReadLimits,
    info: &mut SourceInfo,
    fp: &mut u64,
) -> Result<RawDoc, ReadError> {
    let mut opened = open::open_checked(path, root)?;
    let size = opened.meta.len();
    info.bytes = size;
    // Files refused before reading are fingerprinted from their ends, as discovery would.
    let probed_fp = |file: &std::fs::File| open::probe_file(file, size).map_or(0, |p| p.fp);
    if size > limits.max_file_bytes {
        *fp = probed_fp(&opened.file);
        return Err(ReadError::TooLarge {
            size,
            cap: limits.max_file_bytes,
        });
    }
    if let Err(e) = open::refuse_holes(&opened.file, size) {
        *fp = probed_fp(&opened.file);
        return Err(e);
    }
    // Sized by what arrives, never by the claimed length: a file may grow or lie.
    let raw = open::read_bounded(&mut opened.file, limits.max_file_bytes)?;
    info.bytes = raw.len() as u64;
    if raw.len() as u64 > limits.max_file_bytes {
        return Err(ReadError::TooLarge {
            size: raw.len() as u64,
            cap: limits.max_file_bytes,
        });
    }
    *fp = fingerprint_bytes(&raw);
    decode(path, &raw, limits, info)
}

/// Decodes raw bytes already read from `path` (whose name decides gzip and HTML hints).
pub fn decode(
    path: &Path,
    raw: &[u8],
    limits: ReadLimits,
    info: &mut SourceInfo,
) -> Result<RawDoc, ReadError> {
    if raw.is_empty() {
        return Err(ReadError::Empty);
    }
    let id = format!("{:032x}", crate::dedup::hash128(raw));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let gz = name.ends_with(".gz") || raw.starts_with(&[0x1f, 0x8b]);
    let inflated;
    let bytes: &[u8] = if gz {
        info.compression = Some("gzip".into());
        inflated = inflate(raw, limits.max_inflated_bytes)?;
        &inflated
    } else {
        raw
    };
    if let Some(why) = crate::decode::sniff_binary(bytes) {
        return Err(ReadError::Binary(why));
    }
    let stem = name.strip_suffix(".gz").unwrap_or(&name);
    let named_html = stem.ends_with(".html") || stem.ends_with(".htm");
    let decoded = crate::decode::decode(bytes, named_html || looks_like_html(bytes));
    info.encoding = Some(decoded.encoding.name().to_ascii_lowercase());
    let body = decoded.text;
    if body.trim().is_empty() {
        return Err(ReadError::NoText);
    }
    let format = if named_html || looks_like_html(body.as_bytes()) {
        Format::Html
    } else {
        Format::Text
    };
    info.format = Some(format);
    Ok(RawDoc {
        id,
        format,
        body,
        source_key: String::new(),
    })
}

fn inflate(raw: &[u8], cap: u64) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    MultiGzDecoder::new(raw)
        .take(cap + 1)
        .read_to_end(&mut out)
        .map_err(ReadError::CorruptGzip)?;
    if out.len() as u64 > cap {
        return Err(ReadError::InflatedTooLarge { cap });
    }
    Ok(out)
}

fn looks_like_html(body: &[u8]) -> bool {
    let head = body.trim_ascii_start();
    let head = &head[..head.len().min(64)];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    lower.starts_with(b"<!doctype html")
        || lower.starts_with(b"<html")
        || lower.starts_with(b"<?xml")
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    const LIMITS: ReadLimits = ReadLimits {
        max_file_bytes: 1 << 20,
        max_inflated_bytes: 1 << 16,
    };

    fn dec(name: &str, raw: &[u8]) -> Result<RawDoc, ReadError> {
        let mut info = SourceInfo::named(name.into(), raw.len() as u64);
        decode(Path::new(name), raw, LIMITS, &mut info)
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn formats_are_detected() {
        assert_eq!(dec("a.txt", b"hello").unwrap().format, Format::Text);
        assert_eq!(dec("a.htm", b"<p>x</p>").unwrap().format, Format::Html);
        assert_eq!(
            dec("noext", b"<!DOCTYPE html><p>x").unwrap().format,
            Format::Html
        );
        let d = dec("a.html.gz", &gz(b"<p>hi</p>")).unwrap();
        assert_eq!((d.format, d.body.as_str()), (Format::Html, "<p>hi</p>"));
    }

    #[test]
    fn bad_inputs_are_named() {
        assert!(matches!(dec("a", b""), Err(ReadError::Empty)));
        assert!(matches!(dec("a", b"ab\0c"), Err(ReadError::Binary(_))));
        assert!(matches!(
            dec("a.html", b"%PDF-1.4\n"),
            Err(ReadError::Binary(_))
        ));
        let latin = dec("a", b"Caf\xe9 au lait").unwrap();
        assert_eq!(latin.body, "Caf\u{e9} au lait");
        assert!(matches!(
            dec("a.gz", b"\x1f\x8bnot gzip"),
            Err(ReadError::CorruptGzip(_))
        ));
        let bomb = gz(&vec![b'a'; 1 << 20]);
        assert!(matches!(
            dec("a.gz", &bomb),
            Err(ReadError::InflatedTooLarge { .. })
        ));
    }

    #[test]
    fn id_hashes_raw_bytes() {
        assert_eq!(
            dec("a.txt", b"same").unwrap().id,
            dec("b.html", b"same").unwrap().id
        );
        assert_ne!(
            dec("a.txt", b"same").unwrap().id,
            dec("a.txt", b"other").unwrap().id
        );
    }

    #[test]
    fn ignored_names() {
        for n in [".hidden", "a.tmp", "a.part", "a~"] {
            assert!(is_ignored_name(n), "{n}");
        }
        assert!(!is_ignored_name("a.txt"));
    }
}
