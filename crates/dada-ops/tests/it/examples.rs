//! The examples run with small sizes under `cargo test`, so they keep compiling and working.
use std::path::Path;

// `main` is the example's command line; the tests call its `run`.
#[allow(dead_code)]
#[path = "../../examples/augment_image.rs"]
mod augment_image;

#[test]
fn augment_image_writes_its_images_and_finds_both_gradients() {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dada-ops-augment-image");
    let options = augment_image::Options {
        input: None,
        size: 24,
        out_dir: out_dir.clone(),
        magnitude: 0.8,
    };
    let report = augment_image::run(&options).unwrap();
    assert_eq!(report.dims, [1, 3, 24, 24]);
    assert_eq!(report.written.len(), 3);
    assert!(
        report.written.iter().all(|p| p.is_file()),
        "{:?}",
        report.written
    );

    // rotating by 18 degrees: turning further moves the image further from itself
    let (image_norm, magnitude_grad) = report.rotate_grads;
    assert!(image_norm.is_finite() && image_norm > 0.0, "{image_norm}");
    assert!(
        magnitude_grad > 0.0,
        "rotate magnitude gradient {magnitude_grad}"
    );

    assert!(report.mixture_image_grad_norm.is_finite() && report.mixture_image_grad_norm > 0.0);
    assert_eq!(report.mixture_magnitude_grads.len(), 15);
    for (name, grad) in &report.mixture_magnitude_grads {
        assert!(grad.is_finite(), "{name}: {grad}");
        if ["auto_contrast", "invert", "equalize"].contains(name) {
            assert_eq!(*grad, 0.0, "{name} has no magnitude");
        }
    }
    let moved = report
        .mixture_magnitude_grads
        .iter()
        .filter(|(_, g)| *g != 0.0)
        .count();
    assert!(moved >= 10, "{:?}", report.mixture_magnitude_grads);

    // the same from the PNG it wrote: the loading path
    let again = augment_image::run(&augment_image::Options {
        input: Some(out_dir.join("input.png")),
        out_dir: out_dir.join("from-file"),
        ..options
    })
    .unwrap();
    assert_eq!(again.dims, [1, 3, 24, 24]);
    assert!(again.rotate_grads.1 > 0.0);
    assert!(augment_image::run(&augment_image::Options {
        input: Some(out_dir.join("missing.png")),
        size: 24,
        out_dir: out_dir.join("missing"),
        magnitude: 0.8,
    })
    .is_err());
}
