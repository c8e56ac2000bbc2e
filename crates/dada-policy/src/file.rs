//! Policy files: readable JSON, the fast-autoaugment list format, and raw parameters as
//! safetensors, all through `Read` / `Write` (opening paths is dada-train's job).
use std::collections::HashMap;
use std::io::{Read, Write};

use candle::{DType, Device, Tensor};
use dada_ops::OpSet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Policy, PolicyError, PolicyResult};

/// The `format` tag of our JSON files.
pub const FORMAT: &str = "dada-policy";

/// A discrete augmentation policy: a list of sub-policies, each a short sequence of ops with an
/// apply probability and a magnitude (both in [0, 1]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// Where it came from: `"paper"`, `"tutorial"`, `"fast-autoaugment"`, ...
    pub space: String,
    /// The op set the policy was searched over (snake_case names), for reference.
    pub ops: Vec<String>,
    /// The sub-policies, highest weight first for exported policies.
    pub sub_policies: Vec<SubPolicy>,
}

/// One sub-policy: ops applied in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubPolicy {
    /// Its weight in the search (paper: softmax of the selection logits; tutorial and
    /// imported files: uniform).
    pub weight: f64,
    /// The ops, in application order.
    pub ops: Vec<OpEntry>,
}

/// One op of a sub-policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpEntry {
    /// The op's snake_case name (dada-ops `AugOp::name`), e.g. `"shear_x"`.
    pub op: String,
    /// Probability of applying it.
    pub probability: f64,
    /// Magnitude in [0, 1].
    pub magnitude: f64,
}

/// Our snake_case op names and fast-autoaugment's / the official DADA code's names.
pub const FAST_AUTOAUGMENT_NAMES: [(&str, &str); 18] = [
    ("shear_x", "ShearX"),
    ("shear_y", "ShearY"),
    ("translate_x", "TranslateX"),
    ("translate_y", "TranslateY"),
    ("rotate", "Rotate"),
    ("auto_contrast", "AutoContrast"),
    ("invert", "Invert"),
    ("equalize", "Equalize"),
    ("solarize", "Solarize"),
    ("posterize", "Posterize"),
    ("contrast", "Contrast"),
    ("color", "Color"),
    ("brightness", "Brightness"),
    ("sharpness", "Sharpness"),
    ("cutout", "Cutout"),
    ("identity", "Identity"),
    ("flip_lr", "FlipLR"),
    ("noise", "Noise"),
];

/// Fast-autoaugment's name for our op `name` (e.g. `"shear_x"` -> `"ShearX"`).
pub fn fast_autoaugment_name(name: &str) -> Option<&'static str> {
    FAST_AUTOAUGMENT_NAMES.iter().find(|(ours, _)| *ours == name).map(|(_, faa)| *faa)
}

/// Our snake_case name for `name`, given in either convention (`"ShearX"` or `"shear_x"`;
/// also `"autocontrast"`).
pub fn canonical_op_name(name: &str) -> Option<&'static str> {
    if name == "autocontrast" {
        return Some("auto_contrast");
    }
    FAST_AUTOAUGMENT_NAMES.iter().find(|(ours, faa)| *ours == name || *faa == name).map(|(ours, _)| *ours)
}

impl PolicyFile {
    /// A policy file with the current format tag and version.
    pub fn new(space: &str, ops: Vec<String>, sub_policies: Vec<SubPolicy>) -> Self {
        Self { format: FORMAT.to_string(), version: 1, space: space.to_string(), ops, sub_policies }
    }

    /// Checks every op name (and rewrites it to snake_case), probability and magnitude.
    pub fn validate(&mut self) -> PolicyResult<()> {
        if self.sub_policies.is_empty() {
            return Err(PolicyError::Empty);
        }
        for (i, sp) in self.sub_policies.iter_mut().enumerate() {
            if sp.ops.is_empty() {
                return Err(PolicyError::WrongArity {
                    what: "sub-policy",
                    sub_policy: i,
                    expected: "at least 1 op".into(),
                    got: 0,
                });
            }
            if !sp.weight.is_finite() || sp.weight < 0.0 {
                return Err(PolicyError::Malformed(format!("sub-policy {i}: weight {} must be >= 0", sp.weight)));
            }
            for (j, e) in sp.ops.iter_mut().enumerate() {
                e.op = canonical(&e.op, i)?.to_string();
                check_unit(e.probability, i, j, true)?;
                check_unit(e.magnitude, i, j, false)?;
            }
        }
        for name in &mut self.ops {
            *name = canonical(name, 0)?.to_string();
        }
        Ok(())
    }

    /// The `k` sub-policies of highest weight (stable for ties).
    pub fn top_k(&self, k: usize) -> PolicyFile {
        let mut out = self.clone();
        out.sub_policies.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        out.sub_policies.truncate(k);
        out
    }

    /// Writes the readable JSON (pretty printed).
    pub fn write_json<W: Write>(&self, mut w: W) -> PolicyResult<()> {
        serde_json::to_writer_pretty(&mut w, self)?;
        w.write_all(b"\n")?;
        Ok(())
    }

    /// Reads and validates the readable JSON.
    /// A UTF-8 byte-order mark is accepted. A fast-autoaugment list gets a hint to read it as one.
    pub fn read_json<R: Read>(r: R) -> PolicyResult<Self> {
        let text = read_text(r)?;
        let value: Value = serde_json::from_str(&text)?;
        if value.is_array() {
            return Err(PolicyError::Malformed(
                "this is a fast-autoaugment list ([[[op, prob, mag], ...], ...]), not this project's policy.json: give it as file:<path>".into(),
            ));
        }
        let mut f: PolicyFile = serde_json::from_value(value)?;
        if f.format != FORMAT {
            return Err(PolicyError::Malformed(format!("format is {:?}, expected {FORMAT:?}", crate::error::clip(&f.format))));
        }
        f.validate()?;
        Ok(f)
    }

    /// The fast-autoaugment list `[[[op, prob, mag], [op, prob, mag]], ...]` with
    /// fast-autoaugment's op names (the tuples of the Python format become JSON lists).
    pub fn to_fast_autoaugment(&self) -> Value {
        Value::Array(
            self.sub_policies
                .iter()
                .map(|sp| {
                    Value::Array(
                        sp.ops
                            .iter()
                            .map(|e| {
                                let name = fast_autoaugment_name(&e.op).unwrap_or(&e.op);
                                serde_json::json!([name, e.probability, e.magnitude])
                            })
                            .collect(),
                    )
                })
                .collect(),
        )
    }

    /// Writes [`PolicyFile::to_fast_autoaugment`] as JSON (one sub-policy per line).
    pub fn write_fast_autoaugment<W: Write>(&self, mut w: W) -> PolicyResult<()> {
        let Value::Array(subs) = self.to_fast_autoaugment() else { unreachable!("always a list") };
        w.write_all(b"[\n")?;
        for (i, sp) in subs.iter().enumerate() {
            let sep = if i + 1 < subs.len() { "," } else { "" };
            writeln!(w, "  {}{sep}", serde_json::to_string(sp)?)?;
        }
        w.write_all(b"]\n")?;
        Ok(())
    }

    /// Parses the fast-autoaugment list format (op entries `[op, prob, mag]`, or the official
    /// DADA genotype's `[op, prob, mag, weight]`); sub-policies without a weight get a uniform
    /// one.
    pub fn from_fast_autoaugment(value: &Value) -> PolicyResult<Self> {
        let Value::Array(subs) = value else {
            return Err(PolicyError::Malformed("fast-autoaugment policy must be a list of sub-policies".into()));
        };
        if subs.is_empty() {
            return Err(PolicyError::Empty);
        }
        let uniform = 1.0 / subs.len() as f64;
        let mut sub_policies = Vec::with_capacity(subs.len());
        for (i, sp) in subs.iter().enumerate() {
            let Value::Array(entries) = sp else {
                return Err(PolicyError::Malformed(format!("sub-policy {i} must be a list of [op, prob, mag]")));
            };
            let mut ops = Vec::with_capacity(entries.len());
            let mut weight = None;
            for (j, e) in entries.iter().enumerate() {
                let Value::Array(fields) = e else {
                    return Err(PolicyError::Malformed(format!("op {j} of sub-policy {i} must be a list [op, prob, mag]")));
                };
                if fields.len() != 3 && fields.len() != 4 {
                    return Err(PolicyError::WrongArity {
                        what: "op entry",
                        sub_policy: i,
                        expected: "3 ([op, prob, mag]) or 4 ([op, prob, mag, weight])".into(),
                        got: fields.len(),
                    });
                }
                let Some(name) = fields[0].as_str() else {
                    return Err(PolicyError::Malformed(format!("op {j} of sub-policy {i}: name must be a string")));
                };
                let num = |k: usize, what: &str| -> PolicyResult<f64> {
                    fields[k].as_f64().ok_or_else(|| {
                        PolicyError::Malformed(format!("op {j} of sub-policy {i}: {what} must be a number"))
                    })
                };
                ops.push(OpEntry { op: name.to_string(), probability: num(1, "probability")?, magnitude: num(2, "magnitude")? });
                if fields.len() == 4 {
                    weight = Some(num(3, "weight")?);
                }
            }
            sub_policies.push(SubPolicy { weight: weight.unwrap_or(uniform), ops });
        }
        let mut f = PolicyFile::new("fast-autoaugment", Vec::new(), sub_policies);
        f.validate()?;
        let mut seen: Vec<String> = Vec::new();
        for e in f.sub_policies.iter().flat_map(|sp| &sp.ops) {
            if !seen.contains(&e.op) {
                seen.push(e.op.clone());
            }
        }
        f.ops = seen;
        Ok(f)
    }

    /// Reads the fast-autoaugment list format from JSON.
    /// A UTF-8 byte-order mark is accepted. This project's policy.json gets a hint to read it as one.
    pub fn read_fast_autoaugment<R: Read>(r: R) -> PolicyResult<Self> {
        let v: Value = serde_json::from_str(&read_text(r)?)?;
        if v.get("format").is_some_and(|f| f.as_str() == Some(FORMAT)) {
            return Err(PolicyError::Malformed(
                "this is this project's policy.json, not a fast-autoaugment list: give it as dada:<path>".into(),
            ));
        }
        Self::from_fast_autoaugment(&v)
    }

    /// The ops of the file resolved to dada-ops ops (default construction).
    pub fn op_set(&self) -> PolicyResult<OpSet> {
        let mut set = OpSet::default();
        for (i, sp) in self.sub_policies.iter().enumerate() {
            for e in &sp.ops {
                let name = canonical(&e.op, i)?;
                if set.index_of(name).is_none() {
                    set.push(OpSet::by_name(name).ok_or_else(|| unknown(&e.op, i))?);
                }
            }
        }
        Ok(set)
    }
}

/// Reads all of `r` as UTF-8 text, without a leading byte-order mark.
fn read_text<R: Read>(mut r: R) -> PolicyResult<String> {
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes)?;
    let text = String::from_utf8(bytes)
        .map_err(|e| PolicyError::Malformed(format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// Writes `tensors` as safetensors.
pub fn write_tensors<W: Write>(tensors: &[(String, Tensor)], mut w: W) -> PolicyResult<()> {
    let mut views = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        views.push((name.clone(), RawView::new(t)?));
    }
    let bytes = safetensors::tensor::serialize(views, None)
        .map_err(|e| PolicyError::Params(format!("cannot serialise: {e}")))?;
    w.write_all(&bytes)?;
    Ok(())
}

/// Reads safetensors into named tensors on `dev` (sorted by name).
pub fn read_tensors<R: Read>(mut r: R, dev: &Device) -> PolicyResult<Vec<(String, Tensor)>> {
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes)?;
    let map: HashMap<String, Tensor> = candle::safetensors::load_buffer(&bytes, dev)
        .map_err(|e| PolicyError::Params(format!("not a safetensors file: {e}")))?;
    let mut out: Vec<(String, Tensor)> = map.into_iter().collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Writes a policy's raw parameters ([`Policy::vars`]) as safetensors.
pub fn write_params<W: Write>(policy: &dyn Policy, w: W) -> PolicyResult<()> {
    let named: Vec<(String, Tensor)> = policy.vars().into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect();
    write_tensors(&named, w)
}

/// Loads raw parameters written by [`write_params`] into `policy` (names and shapes must match).
pub fn read_params<R: Read>(policy: &dyn Policy, r: R) -> PolicyResult<()> {
    let tensors = read_tensors(r, policy.device())?;
    for (name, var) in policy.vars() {
        let Some((_, t)) = tensors.iter().find(|(n, _)| *n == name) else {
            return Err(PolicyError::Params(format!(
                "no tensor {name:?} for the {} policy (found: {})",
                policy.space(),
                tensors.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
            )));
        };
        if t.dims() != var.dims() {
            return Err(PolicyError::Params(format!(
                "tensor {name:?} has shape {:?}, the {} policy needs {:?}",
                t.dims(),
                policy.space(),
                var.dims()
            )));
        }
        var.set(&t.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

fn canonical(name: &str, sub_policy: usize) -> PolicyResult<&'static str> {
    canonical_op_name(name).ok_or_else(|| unknown(name, sub_policy))
}

fn unknown(name: &str, sub_policy: usize) -> PolicyError {
    PolicyError::UnknownOp {
        op: crate::error::clip(name),
        sub_policy,
        known: FAST_AUTOAUGMENT_NAMES.iter().map(|(o, _)| *o).collect::<Vec<_>>().join(", "),
    }
}

fn check_unit(value: f64, sub_policy: usize, slot: usize, probability: bool) -> PolicyResult<()> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        return Ok(());
    }
    Err(if probability {
        PolicyError::ProbabilityOutOfRange { sub_policy, slot, value }
    } else {
        PolicyError::MagnitudeOutOfRange { sub_policy, slot, value }
    })
}

/// A tensor's bytes in the layout safetensors wants (little endian, row major).
struct RawView {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl RawView {
    fn new(t: &Tensor) -> PolicyResult<Self> {
        let shape = t.dims().to_vec();
        let flat = t.flatten_all()?;
        let (dtype, data) = match t.dtype() {
            DType::F64 => (safetensors::Dtype::F64, flat.to_vec1::<f64>()?.iter().flat_map(|x| x.to_le_bytes()).collect()),
            DType::U32 => (safetensors::Dtype::U32, flat.to_vec1::<u32>()?.iter().flat_map(|x| x.to_le_bytes()).collect()),
            DType::I64 => (safetensors::Dtype::I64, flat.to_vec1::<i64>()?.iter().flat_map(|x| x.to_le_bytes()).collect()),
            _ => (
                safetensors::Dtype::F32,
                flat.to_dtype(DType::F32)?.to_vec1::<f32>()?.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
        };
        Ok(Self { dtype, shape, data })
    }
}

impl safetensors::View for RawView {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}
