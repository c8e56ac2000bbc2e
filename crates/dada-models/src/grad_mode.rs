//! A scope in which backward passes skip the gradients of the model's own parameters: for
//! backward passes that only need gradients w.r.t. the input (DADA's policy gradients through the
//! classifier, the unrolled hypergradient's passes at `w ± eps v`).

use std::cell::Cell;

thread_local! {
    static PARAMETER_GRADS: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` (typically a `loss.backward()`) with the fast kernels' parameter gradients off: the
/// convolution computes only its input gradient (saving a third of its backward) and BatchNorm
/// returns no scale/shift gradient. Gradients w.r.t. everything upstream of the model (its
/// input, and whatever produced it) are exact and unchanged; the convolution and BatchNorm
/// weights get none (a final linear layer, candle's own op, still gets its small gradient).
/// Thread-local (candle runs a backward pass on the calling thread); nests; restored on panic.
///
/// ```
/// # use candle::{Device, Tensor, Var};
/// # use dada_models::{build_model, without_parameter_grads, ModelKind, ModelParams};
/// let params = ModelParams::new(0, &Device::Cpu);
/// let model = build_model(ModelKind::TinyCnn, 10, &params)?;
/// let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &Device::Cpu)?)?;
/// let loss = model.forward_t(x.as_tensor(), true)?.sum_all()?;
/// let grads = without_parameter_grads(|| loss.backward())?;
/// assert!(grads.get(x.as_tensor()).is_some());
/// let with_grads = params.trainable_vars().iter().filter(|w| grads.get(w.as_tensor()).is_some()).count();
/// assert_eq!(with_grads, 2); // only the classifier head's weight and bias
/// # Ok::<(), candle::Error>(())
/// ```
pub fn without_parameter_grads<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            PARAMETER_GRADS.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(PARAMETER_GRADS.with(|p| p.replace(false)));
    f()
}

/// Whether the current backward pass wants parameter gradients.
pub(crate) fn parameter_grads() -> bool {
    PARAMETER_GRADS.with(|p| p.get())
}
