//! Importer of ImageFolder trees and archives (`train/<class>/*.jpg|png`, `test/<class>/*`).
//!
//! Works on a directory or a `.tar.gz` / `.tgz` / `.tar` archive; the `train/` and `test/` folders
//! may sit at the top or under one top-level folder. Classes are the folder names, in a given
//! order or alphabetical. Every image must have one size. Records come out in a seeded random
//! order (exports are usually sorted by class).
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;

use crate::data::cifar::{DatasetMeta, ImageSet};
use crate::error::{DataError, DataResult};

/// Options of the ImageFolder importer.
#[derive(Debug, Clone, Default)]
pub struct ImportConfig {
    /// Class names in label order; `None`: the folder names in alphabetical order.
    pub classes: Option<Vec<String>>,
    /// Seed of the record order.
    pub seed: u64,
}


/// The result of an import: training and test images plus metadata.
#[derive(Debug, Clone)]
pub struct Imported {
    /// Images of `train/`.
    pub train: ImageSet,
    /// Images of `test/`.
    pub test: ImageSet,
    /// Shape and class names.
    pub meta: DatasetMeta,
}

/// One undecoded file: split ("train" / "test"), class, path (for messages), bytes.
struct RawFile {
    split: Split,
    class: String,
    path: PathBuf,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Split {
    Train,
    Test,
}

fn is_image(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".jpg") || lower.ends_with(".jpeg") || lower.ends_with(".png")
}

/// Splits a relative path into (split, class, file) if it is `[prefix/]train|test/<class>/<file>`.
fn classify(rel: &Path) -> Option<(Split, String, String)> {
    let parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let n = parts.len();
    if n < 3 {
        return None;
    }
    let split = match parts[n - 3].as_str() {
        "train" => Split::Train,
        "test" => Split::Test,
        _ => return None,
    };
    Some((split, parts[n - 2].clone(), parts[n - 1].clone()))
}

/// A class folder found in a scan: its split, class name and path.
type ClassFolder = (Split, String, PathBuf);

/// Collects class folders (even empty ones) and image files from a directory tree.
fn scan_dir(root: &Path) -> DataResult<(Vec<RawFile>, Vec<ClassFolder>)> {
    // Find the folder that holds `train/`: the root or one level below.
    let base = if root.join("train").is_dir() {
        root.to_path_buf()
    } else {
        let mut found = None;
        for entry in fs::read_dir(root).map_err(|e| DataError::io(root, e))? {
            let p = entry.map_err(|e| DataError::io(root, e))?.path();
            if p.join("train").is_dir() {
                found = Some(p);
                break;
            }
        }
        found.ok_or_else(|| DataError::Layout {
            path: root.to_path_buf(),
            reason: "no train/ folder (expected train/<class>/*.jpg and test/<class>/*.jpg)".into(),
        })?
    };
    let mut files = Vec::new();
    let mut folders = Vec::new();
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let dir = base.join(name);
        if !dir.is_dir() {
            // A dataset without test/ is allowed (its test set is empty).
            continue;
        }
        for entry in fs::read_dir(&dir).map_err(|e| DataError::io(&dir, e))? {
            let class_dir = entry.map_err(|e| DataError::io(&dir, e))?.path();
            if !class_dir.is_dir() {
                continue;
            }
            let class = class_dir.file_name().unwrap().to_string_lossy().into_owned();
            folders.push((split, class.clone(), class_dir.clone()));
            for f in fs::read_dir(&class_dir).map_err(|e| DataError::io(&class_dir, e))? {
                let p = f.map_err(|e| DataError::io(&class_dir, e))?.path();
                if p.is_file() && is_image(&p.to_string_lossy()) {
                    let bytes = fs::read(&p).map_err(|e| DataError::io(&p, e))?;
                    files.push(RawFile { split, class: class.clone(), path: p, bytes });
                }
            }
        }
    }
    Ok((files, folders))
}

/// Collects class folders and image files from a tar or tar.gz archive.
fn scan_archive(archive: &Path) -> DataResult<(Vec<RawFile>, Vec<ClassFolder>)> {
    let file = fs::File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let name = archive.to_string_lossy().to_ascii_lowercase();
    let reader: Box<dyn Read> = if name.ends_with(".gz") || name.ends_with(".tgz") {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let mut tar = tar::Archive::new(reader);
    let corrupt = |e: std::io::Error| DataError::Layout {
        path: archive.to_path_buf(),
        reason: format!("corrupt or unreadable archive: {e}"),
    };
    let mut files = Vec::new();
    let mut folders = Vec::new();
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let rel = entry.path().map_err(corrupt)?.into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            // A folder `[prefix/]train|test/<class>/`: remember it to report empty classes.
            let mut with_file = rel.clone();
            with_file.push("x");
            if let Some((split, class, _)) = classify(&with_file) {
                folders.push((split, class, archive.join(&rel)));
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let Some((split, class, fname)) = classify(&rel) else { continue };
        if !is_image(&fname) {
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(corrupt)?;
        let mut folder = rel.clone();
        folder.pop();
        folders.push((split, class.clone(), archive.join(folder)));
        files.push(RawFile { split, class, path: archive.join(&rel), bytes });
    }
    Ok((files, folders))
}

/// Decodes an image file to planar RGB bytes, returning (width, height, planar pixels).
pub fn decode_planar_rgb(bytes: &[u8], path: &Path) -> DataResult<(u32, u32, Vec<u8>)> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| DataError::BadImage { path: path.to_path_buf(), reason: e.to_string() })?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let hw = (w * h) as usize;
    let mut planar = vec![0u8; 3 * hw];
    for (i, px) in img.pixels().enumerate() {
        planar[i] = px[0];
        planar[hw + i] = px[1];
        planar[2 * hw + i] = px[2];
    }
    Ok((w, h, planar))
}

/// Imports an ImageFolder directory tree or archive.
pub fn import_image_folder(source: &Path, cfg: &ImportConfig) -> DataResult<Imported> {
    if !source.exists() {
        return Err(DataError::Missing {
            path: source.to_path_buf(),
            hint: "give an ImageFolder directory or a .tar.gz archive of one".into(),
        });
    }
    let (mut files, folders) = if source.is_dir() { scan_dir(source)? } else { scan_archive(source)? };

    // Class list: given, or the training folder names in alphabetical order.
    let mut train_classes: Vec<String> =
        folders.iter().filter(|f| f.0 == Split::Train).map(|f| f.1.clone()).collect();
    train_classes.sort();
    train_classes.dedup();
    let classes = match &cfg.classes {
        Some(c) => c.clone(),
        None => train_classes.clone(),
    };
    if classes.is_empty() {
        return Err(DataError::Layout {
            path: source.to_path_buf(),
            reason: "no class folders under train/ (expected train/<class>/*.jpg)".into(),
        });
    }
    if classes.len() > 256 {
        return Err(DataError::Layout {
            path: source.to_path_buf(),
            reason: format!("{} classes; the binary layout stores labels in one byte (at most 256)", classes.len()),
        });
    }
    let index: BTreeMap<&str, u8> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as u8)).collect();
    for (split, class, path) in &folders {
        if !index.contains_key(class.as_str()) {
            return Err(DataError::Layout {
                path: path.clone(),
                reason: format!(
                    "class folder '{class}' ({}) is not in the class list {classes:?}",
                    if *split == Split::Train { "train" } else { "test" }
                ),
            });
        }
    }
    // Every class needs images in train/; a test/ class folder that exists must not be empty.
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        for class in &classes {
            let has_folder = folders.iter().any(|f| f.0 == split && &f.1 == class);
            let has_files = files.iter().any(|f| f.split == split && &f.class == class);
            if (split == Split::Train || has_folder) && !has_files {
                let path = folders
                    .iter()
                    .find(|f| f.0 == split && &f.1 == class)
                    .map(|f| f.2.clone())
                    .unwrap_or_else(|| source.join(name).join(class));
                return Err(DataError::EmptyClass { path, class: class.clone() });
            }
        }
    }

    // Deterministic order before decoding, then decode in parallel.
    files.sort_by(|a, b| (a.split, &a.class, &a.path).cmp(&(b.split, &b.class, &b.path)));
    let decoded: Vec<DataResult<(u32, u32, Vec<u8>)>> =
        files.par_iter().map(|f| decode_planar_rgb(&f.bytes, &f.path)).collect();
    let mut first: Option<(u32, u32, PathBuf)> = None;
    let mut records: [Vec<(u8, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
    for (f, d) in files.iter().zip(decoded) {
        let (w, h, planar) = d?;
        match &first {
            None => first = Some((w, h, f.path.clone())),
            Some((fw, fh, fp)) if (*fw, *fh) != (w, h) => {
                return Err(DataError::MixedSizes {
                    path: f.path.clone(),
                    got_w: w,
                    got_h: h,
                    first: fp.clone(),
                    want_w: *fw,
                    want_h: *fh,
                })
            }
            _ => {}
        }
        let slot = if f.split == Split::Train { 0 } else { 1 };
        records[slot].push((index[f.class.as_str()], planar));
    }
    files.clear();
    let (w, h, _) = first.expect("at least one training image (checked above)");
    let mut meta = DatasetMeta::new(3, h as usize, w as usize, classes);
    meta.source = Some(source.display().to_string());
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let mut sets = Vec::new();
    for mut recs in records {
        recs.shuffle(&mut rng);
        let mut set = ImageSet::empty(3, meta.height, meta.width);
        set.pixels.reserve(recs.len() * meta.image_len());
        for (label, planar) in recs {
            set.push(&planar, label);
        }
        sets.push(set);
    }
    let test = sets.pop().unwrap();
    let train = sets.pop().unwrap();
    Ok(Imported { train, test, meta })
}
