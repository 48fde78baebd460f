//! The tar format as bundles use it, by hand (POSIX ustar: 512-byte headers, data padded to
//! 512 bytes, two zero blocks at the end). Reading indexes the entries (name, data offset,
//! size) by their headers alone, seeking over the data, so a blob is later read in place;
//! every header's checksum is checked, and an entry whose data the file does not hold whole
//! is an error naming it. GNU long names (`L`) and pax `path` records are read; writing uses
//! ustar's prefix field, which holds every name ferry writes.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

use sha2::{Digest as _, Sha256};

const BLOCK: u64 = 512;
/// Entries one tar may hold.
const MAX_ENTRIES: usize = 10_000_000;
/// The longest name a long-name or pax record may give.
const MAX_NAME: u64 = 4096;

/// A tar's regular files: each name's data offset and size, and the names in order.
#[derive(Debug, Default)]
pub struct Index {
    pub entries: HashMap<String, (u64, u64)>,
    pub names: Vec<String>,
}

/// Indexes the tar `file` of `len` bytes.
pub fn index<R: Read + Seek>(file: &mut R, len: u64) -> Result<Index, String> {
    let mut index = Index::default();
    let mut offset = 0u64;
    let mut long_name: Option<String> = None;
    let mut header = [0u8; BLOCK as usize];
    loop {
        if offset == len {
            // No end-of-archive blocks: what it lists is checked against its manifest.
            break;
        }
        if offset + BLOCK > len {
            return Err(format!(
                "cut short: {} bytes after the last entry, less than a header",
                len - offset
            ));
        }
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut header))
            .map_err(|e| format!("cannot read the header at byte {offset}: {e}"))?;
        if header.iter().all(|&b| b == 0) {
            break;
        }
        if !checksum_ok(&header) {
            return Err(format!(
                "the header at byte {offset} is damaged (its checksum does not match): not a \
                 tar, or changed"
            ));
        }
        let name = long_name.take().unwrap_or_else(|| header_name(&header));
        let size = number(&header[124..136])
            .ok_or_else(|| format!("entry {name:?}: its size field is not a number"))?;
        let data = offset + BLOCK;
        if size > len - data {
            return Err(format!(
                "cut short: entry {name:?} holds {} of its {size} bytes",
                len - data
            ));
        }
        match header[156] {
            b'0' | 0 | b'7' => {
                let name = clean(&name)?;
                if index.entries.insert(name.clone(), (data, size)).is_some() {
                    return Err(format!("entry {name:?} is in the tar twice"));
                }
                index.names.push(name);
                if index.names.len() > MAX_ENTRIES {
                    return Err(format!("more than {MAX_ENTRIES} entries"));
                }
            }
            b'L' | b'x' => {
                if size > MAX_NAME * 4 {
                    return Err(format!("entry {name:?}: a name record of {size} bytes"));
                }
                let mut bytes = vec![0u8; size as usize];
                file.seek(SeekFrom::Start(data))
                    .and_then(|_| file.read_exact(&mut bytes))
                    .map_err(|e| format!("cannot read entry {name:?}: {e}"))?;
                long_name = if header[156] == b'L' {
                    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                    Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
                } else {
                    pax_path(&bytes)
                };
            }
            _ => {}
        }
        offset = data + size.div_ceil(BLOCK) * BLOCK;
        offset = offset.min(len);
    }
    Ok(index)
}

/// A name as the index keeps it: relative, `/`-separated, no `.` or `..` component.
fn clean(name: &str) -> Result<String, String> {
    let trimmed = name.trim_start_matches("./");
    if trimmed.starts_with('/')
        || trimmed
            .split('/')
            .any(|part| part == ".." || part == "." || part.is_empty())
    {
        return Err(format!("entry {name:?} is not a plain relative path"));
    }
    Ok(trimmed.to_owned())
}

fn field(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn header_name(header: &[u8; 512]) -> String {
    let name = field(&header[0..100]);
    let ustar = &header[257..262] == b"ustar";
    let prefix = if ustar {
        field(&header[345..500])
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

/// An octal field (or GNU's base-256 for large sizes).
fn number(bytes: &[u8]) -> Option<u64> {
    if bytes[0] & 0x80 != 0 {
        let mut value: u64 = u64::from(bytes[0] & 0x7f);
        for &b in &bytes[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(value);
    }
    let text = field(bytes);
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn checksum_ok(header: &[u8; 512]) -> bool {
    let Some(stored) = number(&header[148..156]) else {
        return false;
    };
    let sum: u64 = header
        .iter()
        .enumerate()
        .map(|(at, &b)| {
            if (148..156).contains(&at) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    sum == stored
}

/// The `path` of a pax extended header.
fn pax_path(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines().find_map(|line| {
        let (_, record) = line.split_once(' ')?;
        record.strip_prefix("path=").map(str::to_owned)
    })
}

/// A tar being written.
pub struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Writer<W> {
        Writer { out }
    }

    /// A file of `bytes`.
    pub fn file(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.header(name, bytes.len() as u64)?;
        self.out.write_all(bytes)?;
        self.pad(bytes.len() as u64)
    }

    /// A file of `size` bytes read from `source`; returns their sha256 (hex). A source that
    /// holds another size is an error.
    pub fn stream(&mut self, name: &str, size: u64, source: impl Read) -> io::Result<String> {
        self.header(name, size)?;
        let mut hasher = Sha256::new();
        let mut source = source.take(size);
        let mut buffer = vec![0u8; 1 << 20];
        let mut copied = 0u64;
        loop {
            let n = source.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            self.out.write_all(&buffer[..n])?;
            copied += n as u64;
        }
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: {copied} bytes, not {size}"),
            ));
        }
        self.pad(size)?;
        Ok(format!("{:x}", hasher.finalize()))
    }

    /// The end-of-archive blocks; flushes.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.write_all(&[0u8; 1024])?;
        self.out.flush()
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rest = (BLOCK - size % BLOCK) % BLOCK;
        self.out.write_all(&vec![0u8; rest as usize])
    }

    fn header(&mut self, name: &str, size: u64) -> io::Result<()> {
        let mut header = [0u8; 512];
        let (prefix, base) = split_name(name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: too long a name for a tar entry"),
            )
        })?;
        header[..base.len()].copy_from_slice(base.as_bytes());
        header[100..108].copy_from_slice(b"0000644\0");
        header[108..116].copy_from_slice(b"0000000\0");
        header[116..124].copy_from_slice(b"0000000\0");
        if size < 0o77777777777 {
            header[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        } else {
            header[124] = 0x80;
            header[128..136].copy_from_slice(&size.to_be_bytes());
        }
        header[136..148].copy_from_slice(b"00000000000\0");
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
        header[148..156].copy_from_slice(b"        ");
        let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.out.write_all(&header)
    }
}

/// A name as ustar's prefix (at most 155 bytes) and name (at most 100), split at a `/`.
fn split_name(name: &str) -> Option<(&str, &str)> {
    if name.len() <= 100 {
        return Some(("", name));
    }
    name.char_indices()
        .filter(|&(_, c)| c == '/')
        .map(|(at, _)| (&name[..at], &name[at + 1..]))
        .find(|(prefix, base)| prefix.len() <= 155 && base.len() <= 100 && !base.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = Writer::new(Vec::new());
        for (name, bytes) in files {
            tar.file(name, bytes).unwrap();
        }
        let mut out = Vec::new();
        let Writer { out: written } = tar;
        out.extend(written);
        out.extend([0u8; 1024]);
        out
    }

    #[test]
    fn what_is_written_is_indexed_in_place() {
        let long = format!("docker.io/library/nginx/blobs/sha256/{}", "a".repeat(64));
        let bytes = tar_of(&[("a.json", b"{}"), (&long, b"hello")]);
        let index = index(&mut io::Cursor::new(&bytes), bytes.len() as u64).unwrap();
        assert_eq!(index.names, ["a.json".to_owned(), long.clone()]);
        let (at, size) = index.entries[&long];
        assert_eq!(&bytes[at as usize..(at + size) as usize], b"hello");
    }

    #[test]
    fn a_cut_or_damaged_tar_is_refused_naming_the_entry() {
        let bytes = tar_of(&[("a", &[7u8; 1000]), ("b", b"x")]);
        let cut = &bytes[..700];
        let error = index(&mut io::Cursor::new(cut), cut.len() as u64).unwrap_err();
        assert_eq!(error, "cut short: entry \"a\" holds 188 of its 1000 bytes");
        let mut damaged = bytes.clone();
        damaged[0] = b'z';
        let error = index(&mut io::Cursor::new(&damaged), damaged.len() as u64).unwrap_err();
        assert!(error.contains("header at byte 0 is damaged"), "{error}");
        let mut bad_name = tar_of(&[("../x", b"x")]);
        let len = bad_name.len() as u64;
        let error = index(&mut io::Cursor::new(&mut bad_name), len).unwrap_err();
        assert!(error.contains("not a plain relative path"), "{error}");
    }

    #[test]
    fn system_tar_reads_what_ferry_writes() {
        let Ok(tar) = which::which("tar") else { return };
        let dir = crate::scratch::ScratchDir::create().unwrap();
        let long = format!(
            "quay.io/some/deep/repository/blobs/sha256/{}",
            "b".repeat(64)
        );
        let path = dir.path().join("t.tar");
        std::fs::write(&path, tar_of(&[(&long, b"payload")])).unwrap();
        let out = std::process::Command::new(tar)
            .arg("-tf")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), long);
    }
}
