//! `ModelParams`: a model's variables, split into trainable weights and BatchNorm statistics,
//! with safetensors checkpoints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use crate::init::SeededInit;

/// Name suffixes of non-trainable buffers (BatchNorm running statistics).
const BUFFER_SUFFIXES: [&str; 2] = ["running_mean", "running_var"];

/// A problem with a checkpoint file that the user must fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The file could not be read or written, or is not valid safetensors.
    #[error("checkpoint {path}: cannot read or write it: {source}")]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// The underlying error.
        source: candle::Error,
    },
    /// The model has a tensor that the file lacks: the file belongs to another model.
    #[error("checkpoint {path}: missing tensor `{name}`; was it saved from the same model kind?")]
    MissingTensor {
        /// The checkpoint file.
        path: PathBuf,
        /// The model's tensor name.
        name: String,
    },
    /// A tensor has another shape in the file: another width, depth or class count.
    #[error("checkpoint {path}: tensor `{name}` has shape {found:?} in the file but {expected:?} in the model; check the model config and class count")]
    ShapeMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
        /// The shape found in the file.
        found: Vec<usize>,
    },
    /// The file holds a tensor the model does not have.
    #[error("checkpoint {path}: unexpected tensor `{name}` that the model does not have; was it saved from the same model kind?")]
    UnexpectedTensor {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor name in the file.
        name: String,
    },
    /// A tensor operation failed while applying the checkpoint.
    #[error(transparent)]
    Candle(#[from] candle::Error),
}

/// The variables of one model: trainable weights plus BatchNorm running statistics.
///
/// Build a model with [`ModelParams::var_builder`]; new variables get seeded Kaiming-normal (or
/// the layer's) initialisation. Layers read their weights from these `Var`s at every forward,
/// so `Var::set` (as the DARTS-style unroll does) changes the model in place.
#[derive(Clone)]
pub struct ModelParams {
    varmap: VarMap,
    seed: u64,
    device: Device,
}

impl ModelParams {
    /// An empty parameter set on `device`; variables created through it are seeded by `seed`.
    pub fn new(seed: u64, device: &Device) -> Self {
        Self { varmap: VarMap::new(), seed, device: device.clone() }
    }

    /// A f32 `VarBuilder` creating (or reusing) variables in this set with seeded initialisation.
    pub fn var_builder(&self) -> VarBuilder<'static> {
        let backend = SeededInit::new(self.varmap.clone(), self.seed);
        VarBuilder::from_backend(Box::new(backend), DType::F32, self.device.clone())
    }

    /// The underlying `VarMap` (all variables, buffers included).
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// The device the variables live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Trainable variables with their names, sorted by name (a stable, deterministic order).
    pub fn named_trainable_vars(&self) -> Vec<(String, Var)> {
        self.named_vars_where(|name| !is_buffer(name))
    }

    /// Trainable variables sorted by name; BatchNorm running statistics are left out.
    pub fn trainable_vars(&self) -> Vec<Var> {
        self.named_trainable_vars().into_iter().map(|(_, v)| v).collect()
    }

    /// Non-trainable buffers (BatchNorm running mean and variance) sorted by name.
    pub fn named_buffers(&self) -> Vec<(String, Var)> {
        self.named_vars_where(is_buffer)
    }

    /// Number of trainable scalars (buffers excluded), as in PyTorch's parameter count.
    pub fn num_parameters(&self) -> usize {
        self.trainable_vars().iter().map(|v| v.elem_count()).sum()
    }

    /// Detached copies of every variable (buffers included), keyed by name.
    pub fn snapshot(&self) -> candle::Result<HashMap<String, Tensor>> {
        let data = self.varmap.data().lock().unwrap();
        data.iter().map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?.detach()))).collect()
    }

    /// Writes a snapshot back into the variables (same names and shapes required).
    pub fn restore(&self, snapshot: &HashMap<String, Tensor>) -> candle::Result<()> {
        let data = self.varmap.data().lock().unwrap();
        for (name, var) in data.iter() {
            match snapshot.get(name) {
                Some(t) => var.set(t)?,
                None => candle::bail!("restore: snapshot lacks `{name}`"),
            }
        }
        Ok(())
    }

    /// Saves every variable (buffers included) to a safetensors file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        let path = path.as_ref();
        let tensors: HashMap<String, Tensor> = {
            let data = self.varmap.data().lock().unwrap();
            data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect()
        };
        candle::safetensors::save(&tensors, path)
            .map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })
    }

    /// Loads a safetensors file written by [`ModelParams::save`] for the same model.
    ///
    /// Every variable must be present with the same shape and the file must hold nothing else;
    /// nothing is changed unless the whole file matches.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        let path = path.as_ref();
        let io = |source| CheckpointError::Io { path: path.to_path_buf(), source };
        let tensors = candle::safetensors::load(path, &self.device).map_err(io)?;
        let data = self.varmap.data().lock().unwrap();
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in &names {
            let var = &data[*name];
            let Some(t) = tensors.get(*name) else {
                return Err(CheckpointError::MissingTensor { path: path.to_path_buf(), name: name.to_string() });
            };
            if t.dims() != var.dims() {
                return Err(CheckpointError::ShapeMismatch {
                    path: path.to_path_buf(),
                    name: name.to_string(),
                    expected: var.dims().to_vec(),
                    found: t.dims().to_vec(),
                });
            }
        }
        let mut extra: Vec<&String> = tensors.keys().filter(|k| !data.contains_key(*k)).collect();
        extra.sort();
        if let Some(name) = extra.first() {
            return Err(CheckpointError::UnexpectedTensor { path: path.to_path_buf(), name: name.to_string() });
        }
        for name in names {
            data[name].set(&tensors[name].to_dtype(data[name].dtype())?)?;
        }
        Ok(())
    }

    fn named_vars_where(&self, keep: impl Fn(&str) -> bool) -> Vec<(String, Var)> {
        let data = self.varmap.data().lock().unwrap();
        let mut vars: Vec<(String, Var)> =
            data.iter().filter(|(k, _)| keep(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }
}

fn is_buffer(name: &str) -> bool {
    BUFFER_SUFFIXES.iter().any(|s| name.ends_with(s))
}
