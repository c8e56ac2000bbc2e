//! The command line against bad input: every case exits non-zero, without a panic, with the
//! flag or file named in its message, and changes no file it was given.
use std::path::{Path, PathBuf};
use std::process::Command;

fn xtask() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    // Keep the bundled CIFAR-10 archive out of reach: no case may prepare data on its own.
    cmd.env("DADA_CIFAR10_ARCHIVE", "/nonexistent/cifar10.tar.gz");
    cmd
}

/// Writes an ImageFolder tree of `classes` classes, `n` training and `n / 2` test images each,
/// of `size x size` pixels.
fn image_folder(root: &Path, classes: &[&str], n: usize, size: u32) {
    for (split, count) in [("train", n), ("test", n / 2)] {
        for (k, class) in classes.iter().enumerate() {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..count {
                let img = image::RgbImage::from_fn(size, size, |x, y| {
                    let band = (y as usize * classes.len() / size as usize) == k;
                    let v = if band { 220 } else { 30 } as u8;
                    image::Rgb([v.wrapping_add((x * 3 + i as u32) as u8 % 20), v, v / 2])
                });
                img.save(dir.join(format!("{i:03}.png"))).unwrap();
            }
        }
    }
}

/// Every file under `root` with its bytes.
fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
}

/// A data root with a 16x16 two-class dataset `tiny`, policy files, and a finished-looking run.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    image_folder(&root.join("images"), &["ant", "bee"], 8, 16);
    let data = root.join("data");
    let out = xtask().args(["datasets", "import"]).arg(root.join("images")).args(["--name", "tiny", "--data-dir"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fast_aa = r#"[[["ShearX", 0.5, 0.5], ["Invert", 0.2, 0.1]]]"#;
    std::fs::write(root.join("fast-aa.json"), fast_aa).unwrap();
    let ours = r#"{"format": "dada-policy", "version": 1, "space": "paper", "ops": ["shear_x"], "sub_policies": [{"weight": 1.0, "ops": [{"op": "shear_x", "probability": 0.5, "magnitude": 0.5}]}]}"#;
    std::fs::write(root.join("ours.json"), ours).unwrap();
    let long_op = format!(r#"[[["{}", 0.5, 0.5]]]"#, "X".repeat(1_000_000));
    std::fs::write(root.join("long-op.json"), long_op).unwrap();
    std::fs::create_dir_all(root.join("used-run")).unwrap();
    std::fs::write(root.join("used-run/policy.json"), "precious").unwrap();
    Fixture { _tmp: tmp, root, data }
}

#[test]
fn every_bad_input_is_a_clear_error() {
    let fx = fixture();
    let r = |rel: &str| fx.root.join(rel).display().to_string();
    let data = fx.data.display().to_string();
    let d = ["--data-dir", data.as_str(), "--dataset", "tiny"];
    // (arguments, what the message must name)
    let (used, no_run, mem_run, mem_train, images, no_images) =
        (r("used-run"), r("no-such-run"), r("mem-run"), r("mem-train"), r("images"), r("no-images"));
    let (p_fast, p_ours, p_long) =
        (format!("dada:{}", r("fast-aa.json")), format!("file:{}", r("ours.json")), format!("file:{}", r("long-op.json")));
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        // search: flags
        (vec!["search", "--epochs", "0"], vec!["--epochs 0", "1..="]),
        (vec!["search", "--epochs", "99999999999999"], vec!["--epochs"]),
        (vec!["search", "--batch-size", "-5"], vec!["--batch-size", "-5"]),
        (vec!["search", "--batch-size", "0"], vec!["--batch-size 0"]),
        (vec!["search", "--lr-min", "nan"], vec!["--lr-min NaN"]),
        (vec!["search", "--lr", "-1"], vec!["--lr -1"]),
        (vec!["search", "--lr", "inf"], vec!["--lr inf"]),
        (vec!["search", "--grad-clip", "nan"], vec!["--grad-clip NaN"]),
        (vec!["search", "--momentum", "1"], vec!["--momentum 1"]),
        (vec!["search", "--weight-decay", "-0.1"], vec!["--weight-decay -0.1"]),
        (vec!["search", "--policy-lr", "0"], vec!["--policy-lr 0"]),
        (vec!["search", "--n-val", "0"], vec!["--n-val 0"]),
        (vec!["search", "--top-k", "0"], vec!["--top-k 0"]),
        (vec!["search", "--relax-hidden", "0"], vec!["--relax-hidden 0"]),
        (vec!["search", "--temperature", "cosine:1:nan"], vec!["--temperature", "nan"]),
        (vec!["search", "--temperature", "banana"], vec!["--temperature", "banana"]),
        (vec!["search", "--preset", "fast"], vec!["--preset 'fast'"]),
        (vec!["search", "--model", "vgg"], vec!["--model 'vgg'"]),
        (vec!["search", "--estimator", "reinforce"], vec!["--estimator 'reinforce'"]),
        (vec!["search", "--draw", "sometimes"], vec!["--draw 'sometimes'", "per-image"]),
        (vec!["search", "--preset", "tutorial", "--draw", "per-image"], vec!["--draw per-image", "paper space"]),
        (vec!["search", "--resume", &used, "--draw", "per-image"], vec!["--draw", "cannot be given"]),
        (vec!["search", "--max-memory", "lots"], vec!["--max-memory 'lots'"]),
        (vec!["search", "--device", "tpu"], vec!["--device 'tpu'"]),
        (vec!["gpu-check", "--batch-size", "0"], vec!["--batch-size 0"]),
        // search: data, runs, resume, memory
        (vec!["search", "--dataset", "../etc"], vec!["--dataset", "not a plain name"]),
        (vec!["search", "--dataset", "nope", "--data-dir", &data], vec!["no dataset 'nope'", "datasets import"]),
        (vec!["search", "--out", &used, "--data-dir", &data, "--dataset", "tiny"], vec!["--out", "used-run", "--resume"]),
        (vec!["search", "--resume", &no_run], vec!["no-such-run"]),
        // the flags --resume allows beside it are accepted (the folder then fails as no run)
        (vec!["search", "--resume", &used, "--data-dir", &data, "--max-memory", "8G", "--device", "cpu"], vec!["no checkpoint here"]),
        (vec!["train", "--resume", &used, "--data-dir", &data, "--device", "cpu"], vec!["no checkpoint here"]),
        (vec!["search", "--resume", &used, "--epochs", "3"], vec!["--epochs", "cannot be given"]),
        ([vec!["search", "--quick", "--max-memory", "1M", "--out", &mem_run], d.to_vec()].concat(), vec!["needs about", "--max-memory 1M"]),
        // train
        ([vec!["train", "--n-train", "0"], d.to_vec()].concat(), vec!["--n-train 0"]),
        (vec!["train", "--epochs", "0"], vec!["--epochs 0"]),
        (vec!["train", "--grad-clip", "nan"], vec!["--grad-clip NaN"]),
        (vec!["train", "--eval-every", "0"], vec!["--eval-every 0"]),
        (vec!["train", "--data", "most"], vec!["--data 'most'"]),
        (vec!["train", "--policy", "bogus"], vec!["unknown policy 'bogus'", "dada-official"]),
        (vec!["train", "--policy", "dada-official:mnist"], vec!["dada-official:mnist", "cifar10"]),
        (vec!["train", "--policy", "randaugment:9,9"], vec!["randaugment"]),
        (vec!["train", "--policy", "dada:/nonexistent/policy.json"], vec!["/nonexistent/policy.json"]),
        (vec!["train", "--policy", &p_fast], vec!["fast-aa.json", "file:"]),
        (vec!["train", "--policy", &p_ours], vec!["ours.json", "dada:"]),
        (vec!["train", "--policy", &p_long], vec!["long-op.json", "1000000 characters"]),
        (vec!["train", "--resume", &used, "--lr", "0.5"], vec!["--lr", "cannot be given"]),
        ([vec!["train", "--model", "wrn-40-2", "--batch-size", "1000000", "--max-memory", "1M", "--out", &mem_train], d.to_vec()].concat(), vec!["needs about", "batch"]),
        // verify-grads, augment, showcase
        (vec!["verify-grads", "--eps", "0"], vec!["--eps"]),
        (vec!["verify-grads", "--tolerance", "nan"], vec!["--tolerance"]),
        (vec!["verify-grads", "--batch-size", "0"], vec!["--batch-size 0"]),
        (vec!["augment", "--op", "rotate", "--magnitude", "2", "a.png", "b.png"], vec!["--magnitude 2"]),
        (vec!["augment", "--op", "rotate", "--magnitude", "nan", "a.png", "b.png"], vec!["--magnitude NaN"]),
        (vec!["augment", "--op", "spin", "--magnitude", "0.5", "a.png", "b.png"], vec!["--op 'spin'"]),
        (vec!["augment", "--op", "rotate", "--magnitude", "0.5", "/nonexistent/a.png", "b.png"], vec!["/nonexistent/a.png"]),
        ([vec!["showcase", "--index", "999999"], d.to_vec()].concat(), vec!["--index 999999"]),
        (vec!["showcase", "--magnitude", "-1"], vec!["--magnitude -1"]),
        // datasets
        (vec!["datasets", "mnist"], vec!["unknown dataset 'mnist'", "import"]),
        (vec!["datasets", "import"], vec!["--name"]),
        (vec!["datasets", "import", &images], vec!["--name"]),
        (vec!["datasets", "import", &images, "--name", "../up"], vec!["not a plain name"]),
        (vec!["datasets", "import", &images, "--name", "cifar10"], vec!["built-in"]),
        (vec!["datasets", "import", &no_images, "--name", "x", "--data-dir", &data], vec!["no-images"]),
        (vec!["datasets", "svhn", "--from", &images, "--data-dir", &data], vec!["train_32x32.mat"]),
    ];
    let before = snapshot(&fx.root);
    let mut failures = Vec::new();
    for (args, needles) in &cases {
        let out = xtask().args(args).current_dir(&fx.root).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ok = !out.status.success()
            && !stderr.contains("panicked")
            && needles.iter().all(|n| stderr.contains(n))
            && stderr.len() < 4000;
        if !ok {
            failures.push(format!("{args:?} -> {:?}\n{stderr}", out.status.code()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert_eq!(snapshot(&fx.root), before, "a bad input changed a file");
}

#[test]
fn an_imported_dataset_searches_and_trains_by_name() {
    let fx = fixture();
    let big = fx.root.join("pets-images");
    image_folder(&big, &["cat", "dog", "eel"], 20, 48);
    let out = xtask().args(["datasets", "import"]).arg(&big).args(["--name", "pets", "--data-dir"]).arg(&fx.data).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("pets: 60 training and 30 test images of 3x48x48, 3 classes"), "{stderr}");
    // Importing again replaces nothing.
    let before = snapshot(&fx.data);
    let out = xtask().args(["datasets", "import"]).arg(&big).args(["--name", "pets", "--data-dir"]).arg(&fx.data).output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stderr).contains("nothing written"));
    assert_eq!(snapshot(&fx.data), before);

    let run = fx.root.join("runs/search-pets");
    let out = xtask()
        .args(["search", "--quick", "--model", "tiny-cnn", "--dataset", "pets", "--data-dir"])
        .arg(&fx.data)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("pets: 60 training and 30 test images of 3x48x48, 3 classes"), "{stderr}");
    assert!(stderr.contains("exceed"), "the preset's split is shrunk to the dataset, and says so: {stderr}");
    for f in ["policy.json", "policy-fast-autoaugment.json", "history.csv", "checkpoint.safetensors", "run.json"] {
        assert!(run.join(f).exists(), "{f}");
    }
    // A second search with the same --out is refused and leaves the first one's files alone.
    let before = snapshot(&run);
    let out = xtask().args(["search", "--quick", "--dataset", "pets", "--data-dir"]).arg(&fx.data).arg("--out").arg(&run).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--resume"));
    assert_eq!(snapshot(&run), before);

    let policy = format!("dada:{}", run.join("policy.json").display());
    for p in [policy.as_str(), "dada-official:cifar10", "random"] {
        let out = xtask()
            .args(["train", "--model", "tiny-cnn", "--epochs", "1", "--batch-size", "16", "--dataset", "pets", "--policy", p, "--data-dir"])
            .arg(&fx.data)
            .arg("--out")
            .arg(fx.root.join(format!("runs/train-{}", p.len())))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{p}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("test accuracy") && text.contains("on 30 images"), "{p}: {text}");
    }
}

#[test]
fn gpu_check_runs_on_the_cpu_and_cuda_requests_name_the_feature() {
    let out = xtask().args(["gpu-check", "--device", "cpu", "--quick", "--batch-size", "4"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("checks passed on cpu") && stdout.contains("op rotate: magnitude gradient"), "{stdout}");
    if !dada_train::device::CUDA_BUILT {
        let out = xtask().args(["search", "--quick", "--device", "cuda"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("`cuda` feature"), "{stderr}");
    }
}

/// The device check on a real GPU; skipped with a message where there is none.
#[test]
fn gpu_check_on_cuda() {
    use dada_train::device::{select, DeviceSpec};
    if let Err(e) = select(DeviceSpec::Cuda(0)) {
        eprintln!("skipped: no CUDA device for gpu-check ({e})");
        return;
    }
    let out = xtask().args(["gpu-check", "--device", "cuda", "--quick"]).output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_search_never_rebuilds_cifar10_over_a_users_damaged_dataset() {
    // The reported scenario: the user's own data sits where CIFAR-10 goes, a file of it goes
    // missing, and `search --quick` runs. It must stop with a clear error and change nothing.
    let fx = fixture();
    let cifar = fx.data.join("cifar-10-batches-bin");
    std::fs::rename(fx.data.join("tiny"), &cifar).unwrap();
    std::fs::remove_file(cifar.join("test_batch.bin")).unwrap();
    let before = snapshot(&fx.data);
    // With the bundled archive in reach, as a user has it.
    let archive = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/cifar10-imagefolder.tar.gz");
    let out = xtask()
        .env("DADA_CIFAR10_ARCHIVE", &archive)
        .args(["search", "--quick", "--model", "tiny-cnn", "--data-dir"])
        .arg(&fx.data)
        .arg("--out")
        .arg(fx.root.join("runs/never"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && !stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("cifar-10-batches-bin") && stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(snapshot(&fx.data), before, "the user's data changed");
}

#[test]
fn a_json_error_is_printed_once() {
    let fx = fixture();
    std::fs::write(fx.root.join("broken.json"), "{\"format\": \"dada-policy\", oops}").unwrap();
    let out = xtask().args(["train", "--policy"]).arg(format!("dada:{}", fx.root.join("broken.json").display())).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("broken.json"), "{stderr}");
    assert_eq!(stderr.matches("key must be a string").count(), 1, "{stderr}");
}

#[test]
fn compare_without_pytorch_is_a_clear_error_naming_the_setup_command() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = tmp.path().join("taken.json");
    std::fs::write(&taken, "precious").unwrap();
    let taken = taken.display().to_string();
    let no_dir = tmp.path().join("no-dir/out.json").display().to_string();
    // An interpreter without torch, as Python reports it.
    let no_torch = tmp.path().join("python-without-torch");
    std::fs::write(&no_torch, "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&no_torch, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let no_torch = no_torch.display().to_string();
    let setup = "pip install -r benches/anchors/requirements.txt";
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["compare", "--python", "/nonexistent/python"], vec!["/nonexistent/python", setup]),
        (vec!["compare", "--measure", "wrn-step", "--python", &no_torch], vec!["no module 'torch'", setup]),
        (vec!["compare", "--rounds", "0"], vec!["--rounds 0", "1..="]),
        (vec!["compare", "--threads", "0"], vec!["--threads 0"]),
        (vec!["compare", "--reps", "0"], vec!["--reps 0"]),
        (vec!["compare", "--rounds", "-1"], vec!["--rounds", "-1"]),
        (vec!["compare", "--measure", "resnet"], vec!["--measure 'resnet'", "unknown measure 'resnet'", "wrn-step, wrn-eval, mixture"]),
        (vec!["compare", "--measure", "wrn-step,,mixture"], vec!["--measure", "empty entry"]),
        (vec!["compare", "--json", &taken], vec!["--json", "taken.json", "exists"]),
        (vec!["compare", "--json", &no_dir], vec!["--json", "no-dir"]),
    ];
    let mut failures = Vec::new();
    for (args, needles) in &cases {
        let out = xtask().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ok = !out.status.success() && !stderr.contains("panicked") && needles.iter().all(|n| stderr.contains(n)) && stderr.len() < 4000;
        if !ok {
            failures.push(format!("{args:?} -> {:?}\n{stderr}", out.status.code()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert_eq!(std::fs::read_to_string(tmp.path().join("taken.json")).unwrap(), "precious");
}
