//! The figures a search writes: curves, learned policy analysis, op showcase, dataset samples.
use std::path::Path;

use anyhow::Result;
use candle::{Device, Tensor};
use dada_train::data::{BinaryDataset, ImageSet};
use dada_train::ops::OpSet;
use dada_train::Search;
use plotters::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::plot::{self, GridRow};

fn planar(t: &Tensor) -> Result<(Vec<f32>, usize, usize)> {
    let (_, h, w) = t.dims3()?;
    Ok((t.flatten_all()?.to_device(&Device::Cpu)?.to_vec1::<f32>()?, h, w))
}

/// The first image of each class in `set` (or of the first `n` classes).
fn one_per_class(set: &ImageSet, n: usize) -> Vec<usize> {
    (0..n).filter_map(|c| set.labels.iter().position(|&l| l as usize == c)).collect()
}

/// Training samples of the dataset: two images per class (of the first ten), with class names.
pub fn samples(path: &Path, ds: &BinaryDataset) -> Result<()> {
    let n_classes = ds.meta.classes.len().min(10);
    let mut rows = Vec::new();
    for skip in 0..2 {
        let idx: Vec<usize> = (0..n_classes)
            .filter_map(|c| ds.train.labels.iter().enumerate().filter(|(_, &l)| l as usize == c).nth(skip).map(|(i, _)| i))
            .collect();
        let (x, _) = ds.train.to_tensors(&idx, &Device::Cpu)?;
        let images = (0..idx.len()).map(|i| planar(&x.get(i)?)).collect::<Result<Vec<_>>>()?;
        let labels = idx.iter().map(|&i| ds.meta.classes[ds.train.labels[i] as usize].clone()).collect();
        rows.push(GridRow { labels, images });
    }
    let name = ds.meta.name.as_deref().unwrap_or("dataset");
    plot::image_grid(path, &format!("{name} training samples (before augmentation)"), &rows, 3)
}

/// Every op of the paper and tutorial sets at magnitude 0.7 on one real image.
pub fn showcase(path: &Path, image: &Tensor, magnitude: f32, seed: u64) -> Result<()> {
    let mut rows = Vec::new();
    for (title, set) in [("paper", OpSet::paper()), ("tutorial", OpSet::tutorial())] {
        let mut rng = StdRng::seed_from_u64(seed);
        let x = image.unsqueeze(0)?;
        let m = Tensor::new(&[magnitude], image.device())?;
        let mut images = vec![planar(image)?];
        let mut labels = vec![format!("{title}: original")];
        for op in set.iter() {
            let params = op.sample(1, &mut rng, image.device())?;
            let y = op.apply(&x, &m, &params)?;
            images.push(planar(&y.get(0)?)?);
            labels.push(op.name().to_string());
        }
        rows.push(GridRow { labels, images });
    }
    plot::image_grid(path, &format!("every op at magnitude {magnitude}"), &rows, 3)
}

/// Learned policy: ranked op preferences (left) and images augmented by the policy (right).
pub fn policy(path: &Path, search: &Search, ds: &BinaryDataset, seed: u64) -> Result<()> {
    let root = BitMapBackend::new(path, (1500, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (left, right) = root.split_horizontally(600);
    // A learned policy stays near uniform (as the official DADA one does), so show each op's
    // preference relative to uniform rather than raw shares that all look alike.
    let prefs = search.policy().op_preferences();
    let uniform = 1.0 / prefs.len().max(1) as f64;
    let prefs: Vec<(String, f64)> = prefs.into_iter().map(|p| (p.op.to_string(), 100.0 * (p.weight / uniform - 1.0))).collect();
    plot::bars(&left, "op preference, % above / below uniform", &prefs)?;
    let file = search.export();
    let idx = one_per_class(&ds.test, 8);
    let (x, _) = ds.test.to_tensors(&idx, &Device::Cpu)?;
    let mut rows = vec![GridRow {
        labels: vec!["original".into()],
        images: (0..idx.len()).map(|i| planar(&x.get(i)?)).collect::<Result<Vec<_>>>()?,
    }];
    let mut rng = StdRng::seed_from_u64(seed);
    for k in 0..4 {
        let y = dada_train::policy::sample_discrete(&file, &x, &mut rng)?;
        rows.push(GridRow {
            labels: vec![format!("draw {}", k + 1)],
            images: (0..idx.len()).map(|i| planar(&y.get(i)?)).collect::<Result<Vec<_>>>()?,
        });
    }
    plot::draw_grid(&right, "augmented by the learned policy", &rows, 3)?;
    root.present().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}

/// All figures of a finished search into `out`.
pub fn search_figures(out: &Path, search: &Search, ds: &BinaryDataset) -> Result<()> {
    plot::curves(&out.join("curves.png"), &search.history)?;
    policy(&out.join("policy.png"), search, ds, search.cfg.seed)?;
    let (x, _) = ds.test.to_tensors(&one_per_class(&ds.test, 1), &Device::Cpu)?;
    showcase(&out.join("showcase.png"), &x.get(0)?, 0.7, search.cfg.seed)?;
    samples(&out.join("samples.png"), ds)?;
    Ok(())
}
