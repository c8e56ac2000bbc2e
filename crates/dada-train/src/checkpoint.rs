//! Checkpoints: named tensors plus a JSON state in one safetensors file, written atomically.
//!
//! A checkpoint is written to `<name>.tmp` and synced; the previous checkpoint is then renamed to
//! `<stem>.prev.safetensors` and the new one into place. A run killed at any moment leaves a
//! whole checkpoint behind, and one damaged file does not cost the run: [`Checkpoint::load_or_previous`]
//! falls back to the previous one. Each file carries the md5 of its tensor data and state
//! (`dada_md5`), checked on every load, so flipped bytes are refused rather than resumed.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle::{Device, Tensor};
use md5::{Digest, Md5};
use safetensors::tensor::View;

use crate::error::DataError;

/// A problem with a checkpoint file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// No checkpoint where one was expected.
    #[error("{0}: no checkpoint here (start a new run, or give the output folder of an earlier run to --resume)")]
    Missing(PathBuf),
    /// The file is not a valid checkpoint.
    #[error("{path}: corrupt checkpoint: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint lacks a tensor the run needs, or has it in another shape.
    #[error("{path}: checkpoint tensor '{name}': {reason}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint was written by a run with another configuration.
    #[error("{0} was written by a run with another configuration; resume with the same flags")]
    ConfigMismatch(PathBuf),
    /// An I/O error.
    #[error(transparent)]
    Data(#[from] crate::error::DataError),
    /// A tensor error.
    #[error(transparent)]
    Candle(#[from] candle::Error),
}

/// Named tensors and a JSON state.
#[derive(Debug, Default)]
pub struct Checkpoint {
    /// The tensors, by name.
    pub tensors: HashMap<String, Tensor>,
    /// Free-form state (step counters, config, history) as JSON.
    pub state: serde_json::Value,
}

/// Written into every checkpoint beside its md5, so that a checkpoint whose md5 key is lost
/// is told from one written before checksums existed.
pub const CHECKPOINT_VERSION: &str = "2";

/// md5 over the state and every tensor (name, dtype, shape, bytes) in name order.
fn digest<'a>(state: &str, tensors: impl Iterator<Item = (&'a str, String, Vec<usize>, std::borrow::Cow<'a, [u8]>)>) -> String {
    let mut h = Md5::new();
    h.update((state.len() as u64).to_le_bytes());
    h.update(state.as_bytes());
    for (name, dtype, shape, data) in tensors {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(dtype.as_bytes());
        for d in shape {
            h.update((d as u64).to_le_bytes());
        }
        h.update((data.len() as u64).to_le_bytes());
        h.update(&data);
    }
    format!("{:x}", h.finalize())
}

/// `checkpoint.safetensors` -> `checkpoint.prev.safetensors`.
pub fn previous_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "safetensors".into());
    path.with_file_name(format!("{stem}.prev.{ext}"))
}

impl Checkpoint {
    /// Writes the checkpoint to `path` atomically, keeping the one it replaces as
    /// [`previous_path`].
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let state = self.state.to_string();
        let mut entries: Vec<(&String, &Tensor)> = self.tensors.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let sum = digest(
            &state,
            entries.iter().map(|(n, t)| (n.as_str(), format!("{:?}", View::dtype(*t)), t.dims().to_vec(), View::data(*t))),
        );
        let mut meta = HashMap::new();
        meta.insert("dada_state".to_string(), state);
        meta.insert("dada_md5".to_string(), sum);
        meta.insert("dada_checkpoint".to_string(), CHECKPOINT_VERSION.to_string());
        let bytes = safetensors::serialize(entries, Some(meta))
            .map_err(|e| CheckpointError::Corrupt { path: path.to_path_buf(), reason: e.to_string() })?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        let tmp = path.with_extension("safetensors.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
            f.write_all(&bytes).map_err(|e| DataError::io(&tmp, e))?;
            f.sync_all().map_err(|e| DataError::io(&tmp, e))?;
        }
        if path.exists() {
            let prev = previous_path(path);
            std::fs::rename(path, &prev).map_err(|e| DataError::io(&prev, e))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, e))?;
        Ok(())
    }

    /// Reads a checkpoint from `path`, checking its md5.
    pub fn load(path: &Path, device: &Device) -> Result<Self, CheckpointError> {
        if !path.exists() {
            return Err(CheckpointError::Missing(path.to_path_buf()));
        }
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let corrupt = |reason: String| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason: crate::error::clip_to(&reason, crate::error::MESSAGE_LIMIT),
        };
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let state_text = meta.get("dada_state").ok_or_else(|| corrupt("no dada_state metadata".into()))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| corrupt(e.to_string()))?;
        match meta.get("dada_md5") {
            Some(want) => {
                let mut names: Vec<String> = st.names().into_iter().map(|s| s.to_string()).collect();
                names.sort();
                let views: Vec<_> = names.iter().map(|n| (n.as_str(), st.tensor(n))).collect();
                let mut items = Vec::with_capacity(views.len());
                for (n, v) in &views {
                    let v = v.as_ref().map_err(|e| corrupt(e.to_string()))?;
                    items.push((*n, format!("{:?}", v.dtype()), v.shape().to_vec(), std::borrow::Cow::Borrowed(v.data())));
                }
                let got = digest(state_text, items.into_iter());
                if &got != want {
                    return Err(corrupt(format!("the data does not match its checksum (md5 {got}, written as {}): the file is damaged", crate::error::clip(want))));
                }
            }
            None if meta.contains_key("dada_checkpoint") => {
                return Err(corrupt("the checksum (dada_md5) is missing from a checkpoint that was written with one: the file is damaged".into()));
            }
            None => {
                // Written before checksums existed (2026-12-03): accepted as it is.
            }
        }
        let state = serde_json::from_str(state_text).map_err(|e| corrupt(e.to_string()))?;
        let tensors = candle::safetensors::load_buffer(&bytes, device).map_err(|e| corrupt(e.to_string()))?;
        Ok(Self { tensors, state })
    }

    /// Reads `path`, or where it is missing or damaged the previous checkpoint beside it.
    /// Returns the checkpoint, the file it came from, and the problem with `path` if it was
    /// passed over (to be reported).
    pub fn load_or_previous(path: &Path, device: &Device) -> Result<(Self, PathBuf, Option<CheckpointError>), CheckpointError> {
        match Self::load(path, device) {
            Ok(ck) => Ok((ck, path.to_path_buf(), None)),
            Err(first @ (CheckpointError::Corrupt { .. } | CheckpointError::Missing(_))) => {
                let prev = previous_path(path);
                if !prev.exists() {
                    return Err(first);
                }
                match Self::load(&prev, device) {
                    Ok(ck) => Ok((ck, prev, Some(first))),
                    Err(_) => Err(first),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The tensor `name`, checked to have `shape`.
    pub fn get(&self, path: &Path, name: &str, shape: &[usize]) -> Result<&Tensor, CheckpointError> {
        let t = self.tensors.get(name).ok_or_else(|| CheckpointError::Mismatch {
            path: path.to_path_buf(),
            name: name.to_string(),
            reason: "missing".into(),
        })?;
        if t.dims() != shape {
            return Err(CheckpointError::Mismatch {
                path: path.to_path_buf(),
                name: name.to_string(),
                reason: format!("shape {:?}, expected {shape:?}", t.dims()),
            });
        }
        Ok(t)
    }
}

impl Checkpoint {
    /// Stores a model's weights and BatchNorm statistics (`model.<name>`) and its optimiser's
    /// momentum buffers (`sgd.<name>`).
    pub fn put_model(&mut self, params: &dada_models::ModelParams, sgd: &dada_models::SgdMomentum) {
        for (name, var) in params.named_trainable_vars().into_iter().chain(params.named_buffers()) {
            self.tensors.insert(format!("model.{name}"), var.as_tensor().clone());
        }
        for (name, var) in params.named_trainable_vars() {
            if let Some(buf) = sgd.momentum_buffer(&var) {
                self.tensors.insert(format!("sgd.{name}"), buf.clone());
            }
        }
    }

    /// Restores what [`Checkpoint::put_model`] stored; every model tensor must be there with
    /// its shape.
    pub fn get_model(
        &self,
        path: &Path,
        params: &dada_models::ModelParams,
        sgd: &mut dada_models::SgdMomentum,
    ) -> Result<(), CheckpointError> {
        for (name, var) in params.named_trainable_vars().into_iter().chain(params.named_buffers()) {
            var.set(self.get(path, &format!("model.{name}"), var.dims())?)?;
        }
        for (name, var) in params.named_trainable_vars() {
            sgd.set_momentum_buffer(&var, self.tensors.get(&format!("sgd.{name}")).cloned())?;
        }
        Ok(())
    }

    /// The saved configuration, which must equal `current` (a resumed run continues the same
    /// run).
    pub fn check_config<C: serde::de::DeserializeOwned + PartialEq>(&self, path: &Path, current: &C) -> Result<(), CheckpointError> {
        let saved: C = serde_json::from_value(self.state["config"].clone())
            .map_err(|e| CheckpointError::Corrupt { path: path.to_path_buf(), reason: format!("config: {e}") })?;
        if &saved != current {
            return Err(CheckpointError::ConfigMismatch(path.to_path_buf()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.safetensors");
        let mut ck = Checkpoint::default();
        ck.tensors.insert("a".into(), Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap());
        ck.state = serde_json::json!({"step": 7});
        ck.save(&path).unwrap();
        let back = Checkpoint::load(&path, &Device::Cpu).unwrap();
        assert_eq!(back.state["step"], 7);
        assert_eq!(back.get(&path, "a", &[3]).unwrap().to_vec1::<f32>().unwrap(), vec![1., 2., 3.]);
        assert!(matches!(back.get(&path, "a", &[4]), Err(CheckpointError::Mismatch { .. })));
        assert!(matches!(back.get(&path, "b", &[3]), Err(CheckpointError::Mismatch { .. })));
        // Flipped bytes in the tensor data are refused.
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 5] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = Checkpoint::load(&path, &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("checksum") && err.to_string().contains("ckpt.safetensors"), "{err}");
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(Checkpoint::load(&path, &Device::Cpu), Err(CheckpointError::Corrupt { .. })));
        assert!(matches!(Checkpoint::load(&dir.path().join("none"), &Device::Cpu), Err(CheckpointError::Missing(_))));
    }

    #[test]
    fn a_damaged_checkpoint_falls_back_to_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.safetensors");
        for step in [1, 2] {
            let mut ck = Checkpoint::default();
            ck.tensors.insert("w".into(), Tensor::new(&[step as f32; 64], &Device::Cpu).unwrap());
            ck.state = serde_json::json!({ "step": step });
            ck.save(&path).unwrap();
        }
        assert!(previous_path(&path).ends_with("checkpoint.prev.safetensors"));
        let (ck, from, skipped) = Checkpoint::load_or_previous(&path, &Device::Cpu).unwrap();
        assert_eq!((ck.state["step"].as_i64(), from.as_path(), skipped.is_none()), (Some(2), path.as_path(), true));
        // 64 flipped bytes in the tensor data: refused, and the previous checkpoint is used.
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        for b in &mut bytes[n - 64..] {
            *b ^= 0xff;
        }
        std::fs::write(&path, &bytes).unwrap();
        let (ck, from, skipped) = Checkpoint::load_or_previous(&path, &Device::Cpu).unwrap();
        assert_eq!(ck.state["step"].as_i64(), Some(1));
        assert_eq!(from, previous_path(&path));
        assert!(skipped.unwrap().to_string().contains("checksum"));
        // Both damaged: the error names the newer file.
        std::fs::write(previous_path(&path), b"garbage").unwrap();
        let err = Checkpoint::load_or_previous(&path, &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("checkpoint.safetensors"), "{err}");
    }
}
