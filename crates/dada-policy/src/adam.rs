//! `PolicyAdam`: Adam over explicit `(Var, gradient)` pairs (the policy and the RELAX control
//! variate), with a checkpointable state.
use candle::{bail, DType, Result, Tensor, Var};

/// Adam (Kingma & Ba) with L2 weight decay added to the gradient (PyTorch's `Adam`), over a
/// fixed list of Vars. Gradients are passed explicitly, so RELAX estimates and backprop
/// gradients can be summed first. A Var without a gradient in a step is left alone (its
/// moments and step count too).
///
/// Clamping (the paper space's magnitudes and probabilities) is done where the parameters are
/// used, not here.
#[derive(Debug)]
pub struct PolicyAdam {
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    t: Vec<u32>,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

impl PolicyAdam {
    /// Adam over `vars` with learning rate `lr`, `betas` and L2 `weight_decay` (eps 1e-8).
    /// The DADA search uses lr 0.005, betas (0.5, 0.999), no weight decay.
    pub fn new(vars: Vec<Var>, lr: f64, betas: (f64, f64), weight_decay: f64) -> Result<Self> {
        let m = vars.iter().map(|v| v.zeros_like()).collect::<Result<Vec<_>>>()?;
        let v = vars.iter().map(|v| v.zeros_like()).collect::<Result<Vec<_>>>()?;
        let t = vec![0; vars.len()];
        Ok(Self { vars, m, v, t, lr, beta1: betas.0, beta2: betas.1, eps: 1e-8, weight_decay })
    }

    /// The same optimiser with another `eps`.
    pub fn with_eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate (for a schedule).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr
    }

    /// The Vars it updates.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// One Adam step. Each gradient must belong to one of the Vars (matched by identity) and
    /// have its shape; gradients for the same Var are summed.
    pub fn step(&mut self, grads: &[(Var, Tensor)]) -> Result<()> {
        let mut acc: Vec<Option<Tensor>> = vec![None; self.vars.len()];
        for (var, g) in grads {
            let Some(i) = self.vars.iter().position(|v| v.id() == var.id()) else {
                bail!("policy adam: gradient for a Var it does not optimise (shape {:?})", var.dims())
            };
            if g.dims() != var.dims() {
                bail!("policy adam: gradient shape {:?} != Var shape {:?}", g.dims(), var.dims())
            }
            let g = g.detach().to_dtype(var.dtype())?;
            acc[i] = Some(match acc[i].take() {
                None => g,
                Some(a) => (a + g)?,
            });
        }
        for (i, g) in acc.into_iter().enumerate() {
            let Some(mut g) = g else { continue };
            let var = &self.vars[i];
            if self.weight_decay != 0.0 {
                g = (g + (var.as_tensor() * self.weight_decay)?)?;
            }
            self.t[i] += 1;
            let t = self.t[i] as i32;
            let m = ((&self.m[i] * self.beta1)? + (&g * (1.0 - self.beta1))?)?;
            let v = ((&self.v[i] * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let m_hat = (&m / (1.0 - self.beta1.powi(t)))?;
            let v_hat = (&v / (1.0 - self.beta2.powi(t)))?;
            let update = (m_hat / (v_hat.sqrt()? + self.eps)?)?;
            var.set(&(var.as_tensor() - (update * self.lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// The state for a checkpoint: `m.{i}`, `v.{i}` per Var and `t` (step counts, f32).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.vars.len() + 1);
        for (i, (m, v)) in self.m.iter().zip(&self.v).enumerate() {
            out.push((format!("m.{i}"), m.clone()));
            out.push((format!("v.{i}"), v.clone()));
        }
        let t: Vec<f32> = self.t.iter().map(|&t| t as f32).collect();
        let dev = self.vars.first().map(|v| v.device().clone()).unwrap_or(candle::Device::Cpu);
        if let Ok(t) = Tensor::from_vec(t, self.vars.len(), &dev) {
            out.push(("t".to_string(), t));
        }
        out
    }

    /// Restores a state written by [`PolicyAdam::state_tensors`] (for the same Vars).
    pub fn load_state_tensors(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let get = |name: &str| -> Result<&Tensor> {
            match state.iter().find(|(n, _)| n == name) {
                Some((_, t)) => Ok(t),
                None => bail!("policy adam: state has no tensor {name:?}"),
            }
        };
        for i in 0..self.vars.len() {
            let dims = self.vars[i].dims().to_vec();
            for (name, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let t = get(&format!("{name}.{i}"))?;
                if t.dims() != dims.as_slice() {
                    bail!("policy adam: state {name}.{i} has shape {:?}, expected {dims:?}", t.dims())
                }
                *slot = t.to_dtype(self.vars[i].dtype())?.to_device(self.vars[i].device())?;
            }
        }
        let t = get("t")?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        if t.len() != self.vars.len() {
            bail!("policy adam: state t has {} entries, expected {}", t.len(), self.vars.len())
        }
        self.t = t.iter().map(|&x| x as u32).collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;

    #[test]
    fn adam_minimises_a_quadratic_and_round_trips_state() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::new(&[3f32, -2.0], &dev)?;
        let mut opt = PolicyAdam::new(vec![x.clone()], 0.1, (0.5, 0.999), 0.0)?;
        for _ in 0..300 {
            // d/dx sum (x - 1)^2 = 2 (x - 1)
            let g = ((x.as_tensor() - 1.0)? * 2.0)?;
            opt.step(&[(x.clone(), g)])?;
        }
        for v in x.as_tensor().to_vec1::<f32>()? {
            assert!((v - 1.0).abs() < 1e-2, "{v}");
        }
        // First step of a fresh Adam moves each coordinate by lr * sign(grad).
        let y = Var::new(&[0f32, 0.0], &dev)?;
        let mut opt2 = PolicyAdam::new(vec![y.clone()], 0.05, (0.9, 0.999), 0.0)?;
        opt2.step(&[(y.clone(), Tensor::new(&[2f32, -0.5], &dev)?)])?;
        let v = y.as_tensor().to_vec1::<f32>()?;
        assert!((v[0] + 0.05).abs() < 1e-5 && (v[1] - 0.05).abs() < 1e-5, "{v:?}");
        let st = opt.state_tensors();
        let mut opt3 = PolicyAdam::new(vec![x.clone()], 0.1, (0.5, 0.999), 0.0)?;
        opt3.load_state_tensors(&st)?;
        assert_eq!(opt3.t, opt.t);
        let err = opt3.load_state_tensors(&st[..1]).unwrap_err().to_string();
        assert!(err.contains("no tensor"), "{err}");
        Ok(())
    }
}
