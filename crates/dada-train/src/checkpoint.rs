//! Checkpoints: named tensors plus a JSON state in one safetensors file, written atomically.
//!
//! A checkpoint is written to `<name>.tmp`, synced, then renamed over `<name>`: a run killed at
//! any moment leaves either the previous checkpoint or the new one, never a torn file.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle::{Device, Tensor};

use crate::data::cifar::write_atomic;

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

impl Checkpoint {
    /// Writes the checkpoint to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let mut meta = HashMap::new();
        meta.insert("dada_state".to_string(), self.state.to_string());
        let mut entries: Vec<(&String, &Tensor)> = self.tensors.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let bytes = safetensors::serialize(entries, Some(meta))
            .map_err(|e| CheckpointError::Corrupt { path: path.to_path_buf(), reason: e.to_string() })?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| crate::error::DataError::io(parent, e))?;
        }
        write_atomic(path, &bytes)?;
        Ok(())
    }

    /// Reads a checkpoint from `path`.
    pub fn load(path: &Path, device: &Device) -> Result<Self, CheckpointError> {
        if !path.exists() {
            return Err(CheckpointError::Missing(path.to_path_buf()));
        }
        let bytes = std::fs::read(path).map_err(|e| crate::error::DataError::io(path, e))?;
        let corrupt = |reason: String| CheckpointError::Corrupt { path: path.to_path_buf(), reason };
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let state = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("dada_state"))
            .ok_or_else(|| corrupt("no dada_state metadata".into()))?;
        let state = serde_json::from_str(state).map_err(|e| corrupt(e.to_string()))?;
        let tensors = candle::safetensors::load_buffer(&bytes, device).map_err(|e| corrupt(e.to_string()))?;
        Ok(Self { tensors, state })
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
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(Checkpoint::load(&path, &Device::Cpu), Err(CheckpointError::Corrupt { .. })));
        assert!(matches!(Checkpoint::load(&dir.path().join("none"), &Device::Cpu), Err(CheckpointError::Missing(_))));
    }
}
