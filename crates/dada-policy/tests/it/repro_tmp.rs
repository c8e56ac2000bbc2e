use candle::{Device, Result, Tensor};
use dada_policy::{Estimator, PaperConfig, PaperPolicy, Policy};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[test]
fn repro() -> Result<()> {
    let p = PaperPolicy::new(PaperConfig::default(), &Device::Cpu).unwrap();
    let mut rng = StdRng::seed_from_u64(0);
    let m: Vec<f32> = (0..210).map(|i| if i % 2 == 0 { 0.2 + (i as f32 * 0.37) % 0.25 } else { 0.6 + (i as f32 * 0.37) % 0.3 }).collect();
    p.magnitudes().set(&Tensor::from_vec(m, (105, 2), &Device::Cpu)?)?;
    for _ in 0..16 {
        let s = p.sample(4, 0.5, &mut rng)?;
        let x = Tensor::rand(0f32, 1f32, (4, 3, 8, 8), &Device::Cpu)?;
        let w = Tensor::randn(0f32, 1f32, (4, 3, 8, 8), &Device::Cpu)?;
        let y = p.augment(&x, &s, Estimator::Gumbel, &mut rng)?;
        let diff = (&y - &x)?.abs()?.max_all()?.to_scalar::<f32>()?;
        let loss = (&y * &w)?.sum_all()?;
        let g = loss.backward()?;
        let ops: Vec<_> = s.op_indices()[0].iter().map(|&o| p.ops().get(o).name()).collect();
        print!("sp {} ops {:?} gates {:?} |y-x| {diff:.4} ", s.sub_policies()[0], ops, s.gates());
        for (n, v) in p.vars() {
            let gn = g.get(v.as_tensor()).map(|t| t.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap());
            print!("{n}: {gn:?} ");
        }
        let sc = s.relaxed_categorical().flatten_all()?.get(s.sub_policies()[0])?.to_scalar::<f32>()?;
        let c = s.sub_policies()[0];
        let sb = s.relaxed_bernoulli().flatten_all()?.to_vec1::<f32>()?;
        println!("soft_cat[chosen]={sc} soft_ber {} {}", sb[2*c], sb[2*c+1]);
    }
    Ok(())
}
