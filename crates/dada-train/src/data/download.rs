//! The official CIFAR-10 binary release: download (checked against its md5) and extraction.
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::data::cifar::CIFAR10_DIR;
use crate::error::{DataError, DataResult};

/// Where the official binary release lives.
pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// md5 of `cifar-10-binary.tar.gz`.
pub const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

/// md5 of a file, as lowercase hex.
pub fn md5_file(path: &Path) -> DataResult<String> {
    let mut f = fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Downloads `url` to `dest` (via a temporary file), reporting `(done, total)` bytes to
/// `progress`, and checks the md5. A file already at `dest` with the right md5 is kept.
#[cfg(feature = "download")]
pub fn download(url: &str, dest: &Path, md5: &str, progress: &mut dyn FnMut(u64, Option<u64>)) -> DataResult<()> {
    if dest.exists() && md5_file(dest)? == md5 {
        return Ok(());
    }
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    }
    let fail = |reason: String| DataError::Download { url: url.to_string(), reason };
    let resp = ureq::get(url).call().map_err(|e| fail(e.to_string()))?;
    let total = resp.header("Content-Length").and_then(|s| s.parse::<u64>().ok());
    let mut reader = resp.into_reader();
    let tmp = dest.with_extension("part");
    let mut out = fs::File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| DataError::io(&tmp, e))?;
        done += n as u64;
        progress(done, total);
    }
    out.sync_all().map_err(|e| DataError::io(&tmp, e))?;
    let got = format!("{:x}", hasher.finalize());
    if got != md5 {
        let _ = fs::remove_file(&tmp);
        return Err(DataError::Checksum { path: tmp, got, want: md5.to_string() });
    }
    fs::rename(&tmp, dest).map_err(|e| DataError::io(dest, e))
}

/// Without the `download` feature: an error saying how to get the data instead.
#[cfg(not(feature = "download"))]
pub fn download(url: &str, _dest: &Path, _md5: &str, _progress: &mut dyn FnMut(u64, Option<u64>)) -> DataResult<()> {
    Err(DataError::Download { url: url.to_string(), reason: "built without the `download` feature".into() })
}

/// Extracts the official `cifar-10-binary.tar.gz` into `parent`, checking its md5 first;
/// returns `parent/cifar-10-batches-bin`.
pub fn extract_official(archive: &Path, parent: &Path) -> DataResult<PathBuf> {
    let got = md5_file(archive)?;
    if got != CIFAR10_MD5 {
        return Err(DataError::Checksum { path: archive.to_path_buf(), got, want: CIFAR10_MD5.to_string() });
    }
    let f = fs::File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
    fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    tar.unpack(parent).map_err(|e| DataError::io(parent, e))?;
    Ok(parent.join(CIFAR10_DIR))
}
