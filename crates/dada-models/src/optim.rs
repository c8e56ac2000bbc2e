//! SGD with momentum, Nesterov and weight decay (PyTorch semantics), and gradient-norm clipping.

use candle::backprop::GradStore;
use candle::{Result, Tensor, Var};

/// Hyper-parameters of [`SgdMomentum`].
#[derive(Clone, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (change it each step with [`SgdMomentum::set_lr`]).
    pub lr: f64,
    /// Momentum factor (0: plain SGD).
    pub momentum: f64,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl SgdConfig {
    /// The WRN CIFAR recipe: lr 0.1, momentum 0.9, weight decay 5e-4, Nesterov.
    pub fn wrn_cifar() -> Self {
        Self { lr: 0.1, momentum: 0.9, weight_decay: 5e-4, nesterov: true }
    }
}

/// SGD with momentum as in PyTorch (dampening 0):
/// `d = g + wd w; buf = momentum buf + d; w -= lr (nesterov ? d + momentum buf : buf)`,
/// with buffers starting at zero. Buffers are stored detached, so no graph outlives a step.
#[derive(Debug)]
pub struct SgdMomentum {
    vars: Vec<Var>,
    buffers: Vec<Option<Tensor>>,
    cfg: SgdConfig,
}

impl SgdMomentum {
    /// An optimiser over `vars` (e.g. [`crate::ModelParams::trainable_vars`]).
    pub fn new(vars: Vec<Var>, cfg: SgdConfig) -> Result<Self> {
        if cfg.lr < 0.0 || cfg.momentum < 0.0 || cfg.weight_decay < 0.0 {
            candle::bail!("sgd: lr, momentum and weight decay must be non-negative, got {cfg:?}")
        }
        if cfg.nesterov && cfg.momentum == 0.0 {
            candle::bail!("sgd: nesterov needs a positive momentum")
        }
        let buffers = vec![None; vars.len()];
        Ok(Self { vars, buffers, cfg })
    }

    /// One update from `grads`; variables without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let SgdConfig { lr, momentum, weight_decay, nesterov } = self.cfg;
        for (var, buf) in self.vars.iter().zip(self.buffers.iter_mut()) {
            let Some(grad) = grads.get(var.as_tensor()) else { continue };
            let w = var.as_detached_tensor();
            let mut d = grad.detach();
            if weight_decay != 0.0 {
                d = (d + w.affine(weight_decay, 0.0)?)?;
            }
            if momentum != 0.0 {
                let new_buf = match buf.take() {
                    Some(b) => (b.affine(momentum, 0.0)? + &d)?,
                    None => d.clone(),
                };
                d = if nesterov { (d + new_buf.affine(momentum, 0.0)?)? } else { new_buf.clone() };
                *buf = Some(new_buf.detach());
            }
            var.set(&(w - d.affine(lr, 0.0)?)?)?;
        }
        Ok(())
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        self.cfg.lr
    }

    /// Sets the learning rate for the next steps.
    pub fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    /// The configuration.
    pub fn config(&self) -> &SgdConfig {
        &self.cfg
    }

    /// The variables being optimised, in the order given to [`SgdMomentum::new`].
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// The momentum buffer of `var` (`None` before its first update or if it is not optimised).
    pub fn momentum_buffer(&self, var: &Var) -> Option<&Tensor> {
        let id = var.as_tensor().id();
        self.vars.iter().position(|v| v.as_tensor().id() == id).and_then(|i| self.buffers[i].as_ref())
    }

    /// Sets (or clears) the momentum buffer of `var`, e.g. to restore a checkpoint.
    pub fn set_momentum_buffer(&mut self, var: &Var, buffer: Option<Tensor>) -> Result<()> {
        let id = var.as_tensor().id();
        let Some(i) = self.vars.iter().position(|v| v.as_tensor().id() == id) else {
            candle::bail!("sgd: variable is not optimised by this optimiser")
        };
        if let Some(b) = &buffer {
            if b.shape() != var.shape() {
                candle::bail!("sgd: momentum buffer shape {:?} does not match variable {:?}", b.shape(), var.shape())
            }
        }
        self.buffers[i] = buffer.map(|b| b.detach());
        Ok(())
    }
}

impl candle_nn::Optimizer for SgdMomentum {
    type Config = SgdConfig;

    fn new(vars: Vec<Var>, config: SgdConfig) -> Result<Self> {
        SgdMomentum::new(vars, config)
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        SgdMomentum::step(self, grads)
    }

    fn learning_rate(&self) -> f64 {
        self.cfg.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }
}

/// Scales the gradients of `vars` in `grads` so their global L2 norm is at most `max_norm`
/// (as `torch.nn.utils.clip_grad_norm_`, coefficient `max_norm / (norm + 1e-6)`); returns the
/// norm before clipping.
pub fn clip_grad_norm(vars: &[Var], grads: &mut GradStore, max_norm: f64) -> Result<f64> {
    let mut sq = 0f64;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            sq += g.sqr()?.sum_all()?.to_dtype(candle::DType::F64)?.to_scalar::<f64>()?;
        }
    }
    let norm = sq.sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for var in vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                let scaled = g.affine(coef, 0.0)?.detach();
                grads.insert(var.as_tensor(), scaled);
            }
        }
    }
    Ok(norm)
}
