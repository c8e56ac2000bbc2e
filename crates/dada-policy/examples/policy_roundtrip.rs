//! Builds the paper's DADA policy, trains it for a few steps on a toy objective, writes it as a
//! policy file, reads it back and applies it.
//!
//! ```text
//! cargo run --release -p dada-policy --example policy_roundtrip -- [OUT_DIR] [STEPS]
//! ```
//!
//! The paper policy holds 105 sub-policies (every pair of the 15 ops), each with a selection
//! logit and, per op, an apply probability and a magnitude. Each step draws one sub-policy,
//! augments a batch of test images with it through the Gumbel-Softmax relaxation (so every
//! parameter gets a gradient), and takes an Adam step on a toy objective: move the images away
//! from the originals, `loss = -mean((augmented - x)^2)`. The learned policy is then exported
//! (its 25 heaviest sub-policies), written as JSON and its raw parameters as safetensors in
//! `OUT_DIR` (default: `dada-policy-roundtrip` in the system's temporary directory), read back,
//! and applied to the images as ordinary augmentation with `sample_discrete`.
use std::error::Error;
use std::fs::File;
use std::path::PathBuf;

use candle::{DType, Device, Tensor, Var};
use dada_ops::testing::smooth_images;
use dada_policy::{
    read_params, sample_discrete, sub_policies_text, write_params, Estimator, PaperConfig,
    PaperPolicy, Policy, PolicyAdam, PolicyFile,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// How long to train and where the files go.
pub struct Options {
    /// Folder for `policy.json` and `policy.safetensors` (created if missing).
    pub out_dir: PathBuf,
    /// Adam steps on the toy objective.
    pub steps: usize,
    /// Images per batch.
    pub batch: usize,
    /// Side of the test images.
    pub size: usize,
}

/// What the example did.
pub struct Report {
    /// Per step: the drawn sub-policy's ops, whether each was applied, and the loss.
    pub steps: Vec<(Vec<&'static str>, Vec<bool>, f32)>,
    /// The exported policy.
    pub exported: PolicyFile,
    /// The files written: the policy as JSON, its raw parameters as safetensors.
    pub written: Vec<PathBuf>,
    /// Whether the JSON file read back equals the exported policy.
    pub json_round_trips: bool,
    /// Whether a fresh policy loaded from the raw parameters exports the same policy.
    pub params_round_trip: bool,
    /// The shape of the images augmented with the file read back.
    pub augmented_dims: Vec<usize>,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let steps = match args.get(1) {
        Some(s) => s.parse().map_err(|e| format!("STEPS must be a count, got {s:?}: {e}"))?,
        None => 5,
    };
    let options = Options {
        out_dir: args
            .first()
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("dada-policy-roundtrip")),
        steps,
        batch: 8,
        size: 32,
    };
    let report = run(&options)?;
    for (step, (ops, applied, loss)) in report.steps.iter().enumerate() {
        println!("step {step}: drew {ops:?}, applied {applied:?}, loss {loss:+.5}");
    }
    println!(
        "exported {} sub-policies; the heaviest:\n{}",
        report.exported.sub_policies.len(),
        sub_policies_text(&report.exported, 5)
    );
    for path in &report.written {
        println!("wrote {}", path.display());
    }
    println!("JSON read back equals the export: {}", report.json_round_trips);
    println!("raw parameters loaded into a fresh policy export the same: {}", report.params_round_trip);
    println!("the file read back augmented images of shape {:?}", report.augmented_dims);
    Ok(())
}

/// Trains, exports, writes, reads back and applies the paper policy.
pub fn run(options: &Options) -> Result<Report> {
    let dev = Device::Cpu;
    let policy = PaperPolicy::new(PaperConfig::default(), &dev)?;
    let vars: Vec<Var> = policy.vars().into_iter().map(|(_, var)| var).collect();
    // The DADA search's Adam betas, with a larger learning rate for a short run.
    let mut adam = PolicyAdam::new(vars.clone(), 0.05, (0.5, 0.999), 0.0)?;
    let images = smooth_images((options.batch, 3, options.size, options.size), 1, DType::F32, &dev)?;
    let mut rng = StdRng::seed_from_u64(0);

    let mut steps = Vec::with_capacity(options.steps);
    for _ in 0..options.steps {
        // One sub-policy for the whole batch (the paper's draw), at temperature 0.5.
        let sample = policy.sample(options.batch, 0.5, &mut rng)?;
        let augmented = policy.augment(&images, &sample, Estimator::Gumbel, &mut rng)?;
        let loss = (&augmented - &images)?.sqr()?.mean_all()?.neg()?;
        let grads = loss.backward()?;
        let with_grads: Vec<(Var, Tensor)> = vars
            .iter()
            .filter_map(|var| Some((var.clone(), grads.get(var.as_tensor())?.clone())))
            .collect();
        adam.step(&with_grads)?;
        let ops = sample.op_indices()[0].iter().map(|&k| policy.ops().get(k).name()).collect();
        steps.push((ops, sample.gates()[0].clone(), loss.to_scalar::<f32>()?));
    }

    // The policy as a file: JSON through any `Write`, and raw parameters as safetensors.
    std::fs::create_dir_all(&options.out_dir)?;
    let json = options.out_dir.join("policy.json");
    let params = options.out_dir.join("policy.safetensors");
    let exported = policy.export();
    exported.write_json(File::create(&json)?)?;
    write_params(&policy, File::create(&params)?)?;

    // Read both back: the JSON as a file, the parameters into a fresh policy.
    let read_back = PolicyFile::read_json(File::open(&json)?)?;
    let fresh = PaperPolicy::new(PaperConfig::default(), &dev)?;
    read_params(&fresh, File::open(&params)?)?;
    let params_round_trip = fresh.export() == exported;

    // A policy file is also ordinary augmentation: each image gets one of its sub-policies.
    let augmented = sample_discrete(&read_back, &images, &mut rng)?;
    Ok(Report {
        steps,
        json_round_trips: read_back == exported,
        exported,
        written: vec![json, params],
        params_round_trip,
        augmented_dims: augmented.dims().to_vec(),
    })
}
