//! Temporary timing probe (not committed).
use std::time::Instant;
use candle::{DType, Device, Tensor, Var};
use dada_ops::*;
use rand::{rngs::StdRng, SeedableRng};
fn main() -> candle::Result<()> {
    let dev = Device::Cpu;
    let shape = (128, 3, 32, 32);
    let x = testing::test_images(shape, 1, DType::F32, &dev)?;
    let m = Tensor::rand(0.05f32, 0.95, 128, &dev)?;
    let r = testing::test_images(shape, 2, DType::F32, &dev)?;
    let xv = Var::from_tensor(&x)?;
    let n = 40;
    let time = |label: &str, f: &dyn Fn() -> candle::Result<()>| -> candle::Result<()> {
        f()?; let t = Instant::now(); for _ in 0..n { f()?; } let dt = t.elapsed().as_secs_f64() / n as f64;
        println!("{label:36} {:8.3} ms  {:9.0} img/s", dt * 1e3, 128.0 / dt); Ok(())
    };
    time("candle affine fwd+bwd sum", &|| { xv.as_tensor().affine(2.0, 0.0)?.sum_all()?.backward()?; Ok(()) })?;
    let filter: Vec<String> = std::env::args().skip(1).collect();
    for name in BUILTIN_NAMES {
        if !filter.is_empty() && !filter.iter().any(|f| f == name) { continue; }
        let op = OpSet::by_name(name).unwrap();
        let p = op.sample(128, &mut StdRng::seed_from_u64(1), &dev)?;
        let k = op.kernel(&p, shape)?.unwrap();
        time(&format!("{name} fwd"), &|| { apply_kernel(name, k.clone(), &x, &m)?; Ok(()) })?;
        time(&format!("{name} bwd kernel"), &|| { kernel_backward(k.as_ref(), &x, &m, &r)?; Ok(()) })?;
    }
    Ok(())
}
