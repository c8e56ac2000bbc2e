//! A minimal reader (and writer) of MATLAB Level 5 MAT-files (`.mat` v5 and v7): numeric arrays.
//!
//! Enough of the format to read SVHN's `train_32x32.mat` / `test_32x32.mat`: the 128-byte header,
//! `miMATRIX` and `miCOMPRESSED` (zlib) elements, small data elements and 8-byte padding. Numeric
//! arrays come back column-major as stored: `uint8` arrays as bytes, every other numeric class as
//! f64. Cell, struct, object, char, sparse and complex arrays are skipped. Only little-endian files
//! are read (big-endian and v7.3/HDF5 files get an error saying so).
//!
//! Every declared size is checked against the bytes present before anything is allocated, and a
//! compressed element is decompressed as a stream that stops at its declared size, so a damaged
//! file gives a [`DataError::Layout`] naming it, never a panic or an allocation the file's bytes
//! do not justify.
use std::fmt::Display;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;

use crate::error::{DataError, DataResult};

/// One numeric array of a MAT-file.
#[derive(Debug, Clone, PartialEq)]
pub struct MatArray {
    /// The variable name.
    pub name: String,
    /// Dimensions in MATLAB order (rows, columns, pages, ...).
    pub dims: Vec<usize>,
    /// The elements in column-major order (the first dimension varies fastest); their number is
    /// the product of `dims`.
    pub data: MatData,
}

/// The elements of a numeric array.
#[derive(Debug, Clone, PartialEq)]
pub enum MatData {
    /// A `uint8` array (MATLAB class `mxUINT8`, logical arrays included).
    U8(Vec<u8>),
    /// Any other numeric class (double, single, int8 to uint64), converted to f64.
    F64(Vec<f64>),
}

impl MatData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            MatData::U8(v) => v.len(),
            MatData::F64(v) => v.len(),
        }
    }

    /// Whether the array holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads the numeric arrays of a MAT-file (Level 5, little-endian, compressed or not), in file
/// order; arrays of other classes are skipped.
pub fn read_mat(path: &Path) -> DataResult<Vec<MatArray>> {
    read_mat_hinted(path, "give the path of an existing .mat file", GENERIC_HINT)
}

/// [`read_mat`] of bytes already in memory; `path` only names the file in error messages.
pub fn read_mat_from_bytes(bytes: &[u8], path: &Path) -> DataResult<Vec<MatArray>> {
    Parser { path, hint: GENERIC_HINT }.file(bytes)
}

/// Writes a MAT-file (Level 5, little-endian) holding `arrays`, each `(name, dims, data)` with
/// the data column-major: `U8` as `mxUINT8`/`miUINT8`, `F64` as `mxDOUBLE`/`miDOUBLE`; with
/// `compressed`, each array goes in its own `miCOMPRESSED` (zlib) element, as MATLAB's v7 default.
///
/// This is the writer the tests use to make files in the official format. It writes what it is
/// given without checking that `dims` match the data, so tests can also make malformed files.
///
/// # Panics
/// If a dimension exceeds `i32::MAX` or an element exceeds 4 GiB (the format's limits).
pub fn write_mat(arrays: &[(&str, &[usize], MatData)], compressed: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut text = b"MATLAB 5.0 MAT-file, Platform: dada-train, Created by: dada_train::data::mat::write_mat".to_vec();
    text.resize(116, b' ');
    out.extend_from_slice(&text);
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&VERSION_5.to_le_bytes());
    out.extend_from_slice(b"IM");
    for (name, dims, data) in arrays {
        let element = matrix_element(name, dims, data);
        if compressed {
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(&element).expect("writing to a Vec cannot fail");
            let zipped = encoder.finish().expect("writing to a Vec cannot fail");
            push_tag(&mut out, MI_COMPRESSED, zipped.len());
            out.extend_from_slice(&zipped);
        } else {
            out.extend_from_slice(&element);
        }
    }
    out
}

/// Said after each error of a plain [`read_mat`].
const GENERIC_HINT: &str =
    "the file is damaged or not a MATLAB v5/v7 .mat file: download it again, or re-save it with `save -v7`";

const HEADER_LEN: usize = 128;
const VERSION_5: u16 = 0x0100;
const VERSION_73: u16 = 0x0200;

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;

const MX_DOUBLE: u8 = 6;
const MX_UINT8: u8 = 9;
const MX_UINT64: u8 = 15;
const FLAG_COMPLEX: u32 = 0x0800;

/// [`read_mat`] saying what to do about a missing file (`missing_hint`) or a damaged one (`hint`).
pub(crate) fn read_mat_hinted(path: &Path, missing_hint: &str, hint: &str) -> DataResult<Vec<MatArray>> {
    if !path.exists() {
        return Err(DataError::Missing { path: path.to_path_buf(), hint: missing_hint.to_string() });
    }
    let bytes = fs::read(path).map_err(|e| DataError::io(path, e))?;
    Parser { path, hint }.file(&bytes)
}

/// A data element: its type and its data (padding excluded).
struct Element<'a> {
    ty: u32,
    data: &'a [u8],
}

/// Parses one file; holds what error messages need.
struct Parser<'a> {
    path: &'a Path,
    hint: &'a str,
}

impl Parser<'_> {
    fn err(&self, reason: impl Display) -> DataError {
        DataError::Layout { path: self.path.to_path_buf(), reason: format!("{} ({})", crate::error::clip_to(&reason.to_string(), crate::error::MESSAGE_LIMIT), self.hint) }
    }

    fn file(&self, bytes: &[u8]) -> DataResult<Vec<MatArray>> {
        if bytes.len() < HEADER_LEN {
            return Err(self.err(format_args!(
                "not a MAT-file: {} bytes is shorter than the 128-byte MAT-file header",
                bytes.len()
            )));
        }
        let version = u16::from_le_bytes([bytes[124], bytes[125]]);
        match &bytes[126..128] {
            b"IM" => {}
            b"MI" => return Err(self.err(
                "big-endian MAT-file: only little-endian MAT-files are read (re-save it on a little-endian machine)",
            )),
            _ => return Err(self.err("not a MATLAB v5 MAT-file: no 'IM' endian indicator at bytes 126-127")),
        }
        if version == VERSION_73 {
            return Err(
                self.err("MATLAB v7.3 (HDF5) MAT-file: only v5/v7 MAT-files are read (re-save it with `save -v7`)")
            );
        }
        if version != VERSION_5 {
            return Err(self.err(format_args!("unknown MAT-file version 0x{version:04x} (expected 0x0100)")));
        }
        let mut arrays = Vec::new();
        let mut pos = HEADER_LEN;
        while pos < bytes.len() {
            let rest = &bytes[pos..];
            if rest.len() < 8 && rest.iter().all(|&b| b == 0) {
                break; // trailing padding
            }
            let (element, len) = self.element(rest, &format_args!("data element at byte {pos}"))?;
            match element.ty {
                MI_MATRIX => arrays.extend(self.matrix(element.data, pos)?),
                MI_COMPRESSED => arrays.extend(self.compressed(element.data, pos)?),
                0 if element.data.is_empty() => {} // zero padding, as some writers leave after miCOMPRESSED
                ty => {
                    return Err(self.err(format_args!(
                        "unexpected data element type {ty} at byte {pos} (the top level of a MAT-file holds only miMATRIX and miCOMPRESSED elements)"
                    )))
                }
            }
            // miCOMPRESSED elements are not padded (as MATLAB and scipy write them); others are.
            pos += if element.ty == MI_COMPRESSED { len } else { len.next_multiple_of(8) };
        }
        Ok(arrays)
    }

    /// The element at the start of `buf` and its length (tag + data, padding excluded).
    fn element<'b>(&self, buf: &'b [u8], what: &dyn Display) -> DataResult<(Element<'b>, usize)> {
        if buf.len() < 8 {
            return Err(
                self.err(format_args!("truncated {what}: {} bytes left where an 8-byte tag is expected", buf.len()))
            );
        }
        let first = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if first >> 16 != 0 {
            // Small data element: type in the low half, size in the high half, data in bytes 4..8.
            let n = (first >> 16) as usize;
            if n > 4 {
                return Err(self.err(format_args!("bad {what}: a small data element declares {n} bytes (at most 4)")));
            }
            return Ok((Element { ty: first & 0xFFFF, data: &buf[4..4 + n] }, 8));
        }
        let n = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        let available = buf.len() - 8;
        if n > available {
            return Err(self.err(format_args!("truncated {what}: it declares {n} bytes but only {available} follow")));
        }
        Ok((Element { ty: first, data: &buf[8..8 + n] }, 8 + n))
    }

    /// Decompresses a `miCOMPRESSED` element (at byte `pos`) and parses the `miMATRIX` inside.
    fn compressed(&self, zipped: &[u8], pos: usize) -> DataResult<Option<MatArray>> {
        let damaged = |e: std::io::Error| self.err(format_args!("compressed element at byte {pos} is damaged: {e}"));
        let mut decoder = ZlibDecoder::new(zipped);
        let mut tag = [0u8; 8];
        decoder.read_exact(&mut tag).map_err(damaged)?;
        let first = u32::from_le_bytes([tag[0], tag[1], tag[2], tag[3]]);
        let declared = if first >> 16 != 0 { 0 } else { u32::from_le_bytes([tag[4], tag[5], tag[6], tag[7]]) as usize };
        // Grow with what actually decompresses, never up front from the declared size.
        let mut inner = Vec::with_capacity(8 + declared.min(zipped.len().saturating_mul(8)));
        inner.extend_from_slice(&tag);
        (&mut decoder).take(declared as u64).read_to_end(&mut inner).map_err(damaged)?;
        if inner.len() < 8 + declared {
            return Err(self.err(format_args!(
                "truncated compressed element at byte {pos}: it declares {declared} bytes but decompresses to {}",
                inner.len() - 8
            )));
        }
        let (element, _) = self.element(&inner, &format_args!("compressed element at byte {pos}"))?;
        if element.ty != MI_MATRIX {
            return Err(self.err(format_args!(
                "compressed element at byte {pos} holds a data element of type {} (expected miMATRIX, 14)",
                element.ty
            )));
        }
        self.matrix(element.data, pos)
    }

    /// Parses the body of a `miMATRIX` element (at byte `pos` of the file); `None` for arrays
    /// that are not numeric (or are complex).
    fn matrix(&self, body: &[u8], pos: usize) -> DataResult<Option<MatArray>> {
        if body.is_empty() {
            return Ok(None); // an empty matrix placeholder
        }
        let at = format!("array at byte {pos}");
        let mut offset = 0;
        // Sub-elements are each padded to 8 bytes.
        let mut next = |what: &str| {
            let rest = body.get(offset..).unwrap_or(&[]);
            self.element(rest, &format_args!("{what} of the {at}")).map(|(element, len)| {
                offset += len.next_multiple_of(8);
                element
            })
        };

        let flags = next("array flags")?;
        if flags.ty != MI_UINT32 || flags.data.len() != 8 {
            return Err(self.err(format_args!(
                "bad array flags of the {at}: type {} with {} bytes (expected miUINT32, 8 bytes)",
                flags.ty,
                flags.data.len()
            )));
        }
        let flag_word = u32::from_le_bytes([flags.data[0], flags.data[1], flags.data[2], flags.data[3]]);
        let class = (flag_word & 0xFF) as u8;
        if !(MX_DOUBLE..=MX_UINT64).contains(&class) || flag_word & FLAG_COMPLEX != 0 {
            return Ok(None); // cell, struct, object, char, sparse or complex: not read
        }

        let dims_element = next("dimensions")?;
        if dims_element.ty != MI_INT32 || dims_element.data.len() % 4 != 0 {
            return Err(self.err(format_args!(
                "bad dimensions of the {at}: type {} with {} bytes (expected miINT32)",
                dims_element.ty,
                dims_element.data.len()
            )));
        }
        let mut dims = Vec::with_capacity(dims_element.data.len() / 4);
        for chunk in dims_element.data.chunks_exact(4) {
            let d = i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let d = usize::try_from(d).map_err(|_| self.err(format_args!("negative dimension {d} in the {at}")))?;
            dims.push(d);
        }

        let name_element = next("name")?;
        if name_element.ty != MI_INT8 && name_element.ty != MI_UINT8 && name_element.ty != MI_UTF8 {
            return Err(self.err(format_args!("bad name of the {at}: type {} (expected miINT8)", name_element.ty)));
        }
        let name = String::from_utf8_lossy(name_element.data).into_owned();

        let real = next(&format!("data of variable '{name}'"))?;
        let Some(width) = mi_width(real.ty) else {
            return Err(self.err(format_args!(
                "variable '{name}' ({at}) stores its data as type {}, not a numeric type",
                real.ty
            )));
        };
        if real.data.len() % width != 0 {
            return Err(self.err(format_args!(
                "variable '{name}' ({at}) has {} data bytes, not a whole number of {width}-byte elements",
                real.data.len()
            )));
        }
        let count = real.data.len() / width;
        let numel = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if numel != Some(count) {
            return Err(
                self.err(format_args!("variable '{name}' ({at}) has dimensions {dims:?} but holds {count} elements"))
            );
        }
        let data = if class == MX_UINT8 {
            if real.ty == MI_UINT8 {
                MatData::U8(real.data.to_vec())
            } else {
                let mut bytes = Vec::with_capacity(count);
                for v in to_f64(real.ty, real.data) {
                    if !(0.0..=255.0).contains(&v) || v.fract() != 0.0 {
                        return Err(
                            self.err(format_args!("variable '{name}' ({at}) is uint8 but stores the value {v}"))
                        );
                    }
                    bytes.push(v as u8);
                }
                MatData::U8(bytes)
            }
        } else {
            MatData::F64(to_f64(real.ty, real.data).collect())
        };
        Ok(Some(MatArray { name, dims, data }))
    }
}

/// Bytes per element of a numeric `mi` type.
fn mi_width(ty: u32) -> Option<usize> {
    match ty {
        MI_INT8 | MI_UINT8 => Some(1),
        MI_INT16 | MI_UINT16 => Some(2),
        MI_INT32 | MI_UINT32 | MI_SINGLE => Some(4),
        MI_DOUBLE | MI_INT64 | MI_UINT64 => Some(8),
        _ => None,
    }
}

/// The elements of `data` (a whole number of elements of numeric type `ty`) as f64.
fn to_f64(ty: u32, data: &[u8]) -> Box<dyn Iterator<Item = f64> + '_> {
    fn chunks<const N: usize>(data: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        data.chunks_exact(N).map(|c| c.try_into().expect("chunks_exact yields N bytes"))
    }
    match ty {
        MI_INT8 => Box::new(data.iter().map(|&b| b as i8 as f64)),
        MI_UINT8 => Box::new(data.iter().map(|&b| b as f64)),
        MI_INT16 => Box::new(chunks::<2>(data).map(|b| i16::from_le_bytes(b) as f64)),
        MI_UINT16 => Box::new(chunks::<2>(data).map(|b| u16::from_le_bytes(b) as f64)),
        MI_INT32 => Box::new(chunks::<4>(data).map(|b| i32::from_le_bytes(b) as f64)),
        MI_UINT32 => Box::new(chunks::<4>(data).map(|b| u32::from_le_bytes(b) as f64)),
        MI_SINGLE => Box::new(chunks::<4>(data).map(|b| f32::from_le_bytes(b) as f64)),
        MI_DOUBLE => Box::new(chunks::<8>(data).map(f64::from_le_bytes)),
        MI_INT64 => Box::new(chunks::<8>(data).map(|b| i64::from_le_bytes(b) as f64)),
        MI_UINT64 => Box::new(chunks::<8>(data).map(|b| u64::from_le_bytes(b) as f64)),
        _ => Box::new(std::iter::empty()),
    }
}

/// Appends a full 8-byte tag.
fn push_tag(out: &mut Vec<u8>, ty: u32, len: usize) {
    let len = u32::try_from(len).expect("a MAT v5 data element holds at most 4 GiB");
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
}

/// Appends a sub-element (small format when it fits in 4 bytes, as MATLAB does), padded to 8.
fn push_sub(out: &mut Vec<u8>, ty: u32, data: &[u8]) {
    if data.len() <= 4 {
        out.extend_from_slice(&(ty | (data.len() as u32) << 16).to_le_bytes());
        out.extend_from_slice(data);
        out.resize(out.len() + 4 - data.len(), 0);
    } else {
        push_tag(out, ty, data.len());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(8), 0);
    }
}

/// A whole `miMATRIX` element (tag included).
fn matrix_element(name: &str, dims: &[usize], data: &MatData) -> Vec<u8> {
    let class = match data {
        MatData::U8(_) => MX_UINT8,
        MatData::F64(_) => MX_DOUBLE,
    };
    let mut body = Vec::new();
    let mut flags = [0u8; 8];
    flags[0] = class;
    push_tag(&mut body, MI_UINT32, 8);
    body.extend_from_slice(&flags);
    let dims: Vec<u8> = dims
        .iter()
        .flat_map(|&d| i32::try_from(d).expect("a MAT-file dimension is at most i32::MAX").to_le_bytes())
        .collect();
    // Dimensions always take a full tag (MATLAB never writes them small).
    push_tag(&mut body, MI_INT32, dims.len());
    body.extend_from_slice(&dims);
    body.resize(body.len().next_multiple_of(8), 0);
    push_sub(&mut body, MI_INT8, name.as_bytes());
    match data {
        MatData::U8(v) => push_sub(&mut body, MI_UINT8, v),
        MatData::F64(v) => {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            push_sub(&mut body, MI_DOUBLE, &bytes)
        }
    }
    let mut element = Vec::with_capacity(8 + body.len());
    push_tag(&mut element, MI_MATRIX, body.len());
    element.extend_from_slice(&body);
    element
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> DataResult<Vec<MatArray>> {
        read_mat_from_bytes(bytes, Path::new("t.mat"))
    }

    #[test]
    fn round_trip_both_kinds() {
        for compressed in [false, true] {
            let bytes = write_mat(
                &[
                    ("a", &[2, 3], MatData::U8(vec![1, 2, 3, 4, 5, 6])),
                    ("longer_name", &[1, 2], MatData::F64(vec![0.5, -7.0])),
                ],
                compressed,
            );
            let arrays = parse(&bytes).unwrap();
            assert_eq!(arrays.len(), 2);
            assert_eq!(
                arrays[0],
                MatArray { name: "a".into(), dims: vec![2, 3], data: MatData::U8(vec![1, 2, 3, 4, 5, 6]) }
            );
            assert_eq!(arrays[1].name, "longer_name");
            assert_eq!(arrays[1].data, MatData::F64(vec![0.5, -7.0]));
        }
    }

    #[test]
    fn double_stored_as_small_uint8_is_widened() {
        // MATLAB stores a double array whose values fit in uint8 as miUINT8: class mxDOUBLE,
        // data in a small element here (3 bytes).
        let mut body = Vec::new();
        push_tag(&mut body, MI_UINT32, 8);
        body.extend_from_slice(&[MX_DOUBLE, 0, 0, 0, 0, 0, 0, 0]);
        push_tag(&mut body, MI_INT32, 8);
        body.extend_from_slice(&[3, 0, 0, 0, 1, 0, 0, 0]);
        push_sub(&mut body, MI_INT8, b"y");
        push_sub(&mut body, MI_UINT8, &[10, 1, 7]);
        let mut bytes = write_mat(&[], false);
        push_tag(&mut bytes, MI_MATRIX, body.len());
        bytes.extend_from_slice(&body);
        let arrays = parse(&bytes).unwrap();
        assert_eq!(arrays[0].data, MatData::F64(vec![10.0, 1.0, 7.0]));
        assert_eq!(arrays[0].dims, vec![3, 1]);
    }

    #[test]
    fn char_arrays_are_skipped() {
        let mut body = Vec::new();
        push_tag(&mut body, MI_UINT32, 8);
        body.extend_from_slice(&[4, 0, 0, 0, 0, 0, 0, 0]); // mxCHAR
        push_tag(&mut body, MI_INT32, 8);
        body.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0]);
        push_sub(&mut body, MI_INT8, b"s");
        push_sub(&mut body, MI_UTF8, b"hi");
        let mut bytes = write_mat(&[("u", &[1, 1], MatData::U8(vec![9]))], false);
        push_tag(&mut bytes, MI_MATRIX, body.len());
        bytes.extend_from_slice(&body);
        let arrays = parse(&bytes).unwrap();
        assert_eq!(arrays.len(), 1);
        assert_eq!(arrays[0].name, "u");
    }

    #[test]
    fn big_endian_and_v73_are_refused_by_name() {
        let mut bytes = write_mat(&[], false);
        bytes[126..128].copy_from_slice(b"MI");
        assert!(parse(&bytes).unwrap_err().to_string().contains("big-endian"));
        let mut bytes = write_mat(&[], false);
        bytes[124..126].copy_from_slice(&VERSION_73.to_le_bytes());
        assert!(parse(&bytes).unwrap_err().to_string().contains("v7.3"));
    }

    #[test]
    fn huge_declared_compressed_size_is_an_error_not_an_allocation() {
        // A compressed element whose inner tag declares 4 GiB - 1 but holds 8 bytes.
        let mut inner = Vec::new();
        push_tag(&mut inner, MI_MATRIX, u32::MAX as usize);
        inner.extend_from_slice(&[0; 8]);
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&inner).unwrap();
        let zipped = encoder.finish().unwrap();
        let mut bytes = write_mat(&[], false);
        push_tag(&mut bytes, MI_COMPRESSED, zipped.len());
        bytes.extend_from_slice(&zipped);
        let msg = parse(&bytes).unwrap_err().to_string();
        assert!(msg.contains("t.mat") && msg.contains("truncated compressed element"), "{msg}");
    }
}
