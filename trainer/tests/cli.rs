//! The trainer as a user runs it (the real binary on real files, on the CPU): resume
//! equivalence, a damaged checkpoint, export (with the EMA decay in effect), an `--init-from`
//! continuation, sample with the golden fingerprint, eval, bench, a diverging run. One test,
//! run in order, because training reseeds burn's process-wide generator.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::store::{BurnpackStore, ModuleSnapshot, bridge};
use burn::tensor::{Bytes, Device};
use ddpm_avatars::UNetConfig;
use ddpm_avatars::weights::{fingerprint_probe, load_from_file};

mod cli_support;
use cli_support::{image_folder, succeed, trainer};

fn parameters(path: &Path) -> Vec<(String, Vec<f32>)> {
    let mut model = UNetConfig::tiny().with_dropout(0.1).init(&Device::flex());
    let bytes = std::fs::read(path).unwrap();
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)));
    model.load_from(&mut store).unwrap();
    model
        .collect(None, None, false)
        .iter()
        .map(|t| (t.name.clone(), bridge::to_data(t).unwrap().try_into_vec_as::<f32>().unwrap()))
        .collect()
}

/// `trainer eval` of `weights` on `data`, on the CPU.
fn eval_args<'a>(weights: &'a str, data: &'a str) -> [&'a str; 7] {
    ["eval", "--weights", weights, "--data", data, "--device", "cpu"]
}

fn checkpoint(run: &Path, step: u64) -> PathBuf {
    run.join("checkpoints").join(format!("step-{step:09}"))
}

#[test]
fn resume_damaged_checkpoint_divergence_export_and_sample() {
    let root = std::env::temp_dir().join(format!("ddpm-trainer-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let data = image_folder(&root);
    let data = data.to_str().unwrap();
    let (straight, split) = (root.join("straight"), root.join("split"));
    let common = [
        "--data",
        data,
        "--config",
        "tiny",
        "--device",
        "cpu",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
    ];
    let with = |run: &Path, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = vec!["train".into(), "--run".into(), run.display().to_string()];
        args.extend(common.iter().map(|s| s.to_string()));
        args.extend(
            ["--warmup", "4", "--seed", "3", "--checkpoint-every", "6", "--log-every", "2"]
                .map(String::from),
        );
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |args: Vec<String>| succeed(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // 1. Resume equivalence: 12 steps straight == 6 steps, stop, resume, 6 more (same seed).
    run(with(&straight, &["--steps", "12"]));
    run(with(&split, &["--steps", "6"]));
    let resumed = run(with(&split, &["--steps", "12", "--resume"]));
    assert!(resumed.contains("resuming from"), "{resumed}");
    for file in ["model.bpk", "ema.bpk"] {
        // Bit-exact on the CPU backend: same data order, timesteps, noise and dropout per
        // step (all derived from (seed, step)), and the restored Adam moments (a fresh
        // optimiser would change every update after step 6).
        assert_eq!(
            parameters(&checkpoint(&straight, 12).join(file)),
            parameters(&checkpoint(&split, 12).join(file)),
            "{file} differs after resuming"
        );
    }
    for artefact in
        ["loss.png", "metrics.csv", "train.log", "run.json", "samples/step-000000012.png"]
    {
        assert!(straight.join(artefact).exists(), "{artefact} missing");
    }
    let metrics = std::fs::read_to_string(split.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 13, "one row per step, none repeated after resuming");

    // 2. A truncated newest checkpoint is detected and the previous one used.
    let model_file = checkpoint(&straight, 12).join("model.bpk");
    let bytes = std::fs::read(&model_file).unwrap();
    std::fs::write(&model_file, &bytes[..bytes.len() / 2]).unwrap();
    let output = run(with(&straight, &["--steps", "14", "--resume"]));
    assert!(output.contains("unusable") && output.contains("step-000000006"), "{output}");

    // 3. Export -> load in the core crate -> the fingerprint matches -> sample.
    let weights = root.join("tiny.safetensors");
    let exported =
        succeed(&["export", "--run", split.to_str().unwrap(), "--out", weights.to_str().unwrap()]);
    assert!(exported.contains("step 12"), "{exported}");
    let loaded = load_from_file(&weights, &Device::flex()).unwrap();
    assert_eq!(loaded.metadata.training.steps, 12);
    assert_eq!(loaded.metadata.training.images_seen, 12 * 8);
    assert_eq!(loaded.metadata.model, UNetConfig::tiny());
    let fresh: Vec<f32> = fingerprint_probe(&loaded.model, &loaded.metadata, &Device::flex())
        .try_into_vec_as()
        .unwrap();
    let recorded = loaded.metadata.fingerprint.clone().expect("export records a fingerprint");
    let largest = recorded.check(&fresh).expect("the fingerprint matches on the same backend");
    assert!(largest <= 1e-5, "the same backend reproduces the fingerprint to {largest}");
    // The EMA decay in effect, not the 0.9999 target: by hand, the last of 12 updates is
    // 0-based step 11, with decay min(0.9999, (1 + 11) / (10 + 11)) = 12 / 21.
    let decay = loaded.metadata.training.ema_decay;
    assert!((decay - 12.0 / 21.0).abs() < 1e-12, "recorded EMA decay {decay}");
    assert!(exported.contains("target 0.9999"), "{exported}");

    // 3b. --init-from continues the lineage: steps, images, parent hash, EMA warm-up.
    let child = root.join("child");
    let output = run(with(&child, &["--steps", "14", "--init-from", weights.to_str().unwrap()]));
    assert!(output.contains("reached 14 steps"), "{output}");
    let child_weights = root.join("child.safetensors");
    succeed(&[
        "export",
        "--run",
        child.to_str().unwrap(),
        "--out",
        child_weights.to_str().unwrap(),
    ]);
    let continued = load_from_file(&child_weights, &Device::flex()).unwrap().metadata.training;
    assert_eq!((continued.steps, continued.images_seen), (14, 14 * 8));
    assert_eq!(continued.parent.as_deref(), Some(loaded.short_hash.as_str()));
    // By hand: the last update is 0-based step 13 of the lineage: (1 + 13) / (10 + 13) = 14 / 23.
    assert!((continued.ema_decay - 14.0 / 23.0).abs() < 1e-12, "{}", continued.ema_decay);
    let grid = root.join("grid.png");
    // A 4-avatar DDIM 5-step sample of the parent's weights into `out`, plus `extra` flags.
    let sample = |out: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["sample", "--weights", weights.to_str().unwrap()];
        args.extend(["--out", out.to_str().unwrap(), "--device", "cpu", "--sampler", "ddim"]);
        args.extend(["--steps", "5", "--count", "4"]);
        args.extend(extra);
        succeed(&args)
    };
    let sampled = sample(&grid, &["--trajectory", "--trajectory-at", "1000,800,0"]);
    assert!(sampled.contains("grid-trajectory.png"), "{sampled}");
    let picture = image::open(&grid).unwrap();
    // 2x2 avatars of 16 px with 2 px gaps, upscaled 2x.
    assert_eq!((picture.width(), picture.height()), (68, 68));
    let strip = image::open(root.join("grid-trajectory.png")).unwrap();
    assert_eq!((strip.width(), strip.height()), (2 * (3 * 16 + 2 * 2), 2 * (4 * 16 + 3 * 2)));
    // --spacing trailing visits other timesteps (999, 799, .. instead of 800, 600, ..).
    let trailing = root.join("trailing.png");
    sample(&trailing, &["--spacing", "trailing"]);
    let leading = image::open(&grid).unwrap().to_rgba8();
    let trailing = image::open(&trailing).unwrap().to_rgba8();
    assert_eq!(leading.dimensions(), trailing.dimensions());
    assert_ne!(leading.as_raw(), trailing.as_raw(), "the spacing changes the samples");

    // 4. eval and bench print their figures.
    let weights_path = weights.to_str().unwrap();
    let evaluated = succeed(&eval_args(weights_path, data));
    assert!(evaluated.contains("held-out eps-MSE") && evaluated.contains("images"), "{evaluated}");
    // The folder packed into one dataset file evaluates the same held-out images, the same.
    let packed = root.join("images-16.dataset");
    let packed_path = packed.to_str().unwrap();
    let report = succeed(&["data", "pack", "--data", data, "--size", "16", "--out", packed_path]);
    assert!(report.contains("64 images of 16x16"), "{report}");
    let from_file = succeed(&eval_args(weights_path, packed_path));
    let figure = |text: &str| text.lines().find(|l| l.contains("eps-MSE")).map(str::to_owned);
    assert_eq!(figure(&from_file), figure(&evaluated), "the dataset file evaluates differently");
    std::fs::write(root.join("not-a-dataset"), b"PNG?").unwrap();
    let refused = trainer(&eval_args(weights_path, root.join("not-a-dataset").to_str().unwrap()));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && message.contains("dataset file"), "{message}");
    // --all: every backend this build has, one column each. Vulkan is pointed at a driver
    // list that does not exist, so on every machine it is the one left out, with a note.
    let bench_args = [
        "bench",
        "--all",
        "--config",
        "tiny",
        "--batch",
        "2",
        "--steps",
        "1",
        "--sample-steps",
        "1",
        "--warmup",
        "1",
    ];
    let benched = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(bench_args)
        .env("VK_ICD_FILENAMES", root.join("no-such-driver.json"))
        .output()
        .expect("run trainer");
    let (table, notes) =
        (String::from_utf8_lossy(&benched.stdout), String::from_utf8_lossy(&benched.stderr));
    assert!(benched.status.success(), "bench --all failed: {table}{notes}");
    assert!(table.starts_with("| measurement | cpu |\n"), "{table}");
    for row in ["| training, batch 2, f32 (img/s) |", "| sampling, batch 16 (ms/step) |"] {
        assert!(table.contains(row), "{row} missing from {table}");
    }
    if cfg!(feature = "gpu") {
        assert!(notes.contains("--device vulkan: not measured"), "{notes}");
    }

    // 5. A diverging run stops with a message naming the step and keeps its last good checkpoint.
    let diverging = root.join("diverging");
    let output = trainer(
        &with(
            &diverging,
            &["--steps", "40", "--lr", "1e30", "--warmup", "0", "--checkpoint-every", "1"],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(message.contains("the loss became") && message.contains("at step"), "{message}");
    let failed_step: u64 = message
        .split("at step ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|number| number.trim().parse().ok())
        .unwrap_or_else(|| panic!("no step number in: {message}"));
    assert!(failed_step >= 2, "the first step of a fresh model has a finite loss: {message}");
    // With --checkpoint-every 1, the newest checkpoint is the step before the failed one, it
    // passes its checksums, and its weights are the finite ones that step produced.
    let kept = trainer::checkpoint::list(&diverging.join("checkpoints")).unwrap();
    assert_eq!(kept[0], checkpoint(&diverging, failed_step - 1), "{kept:?}");
    let last_good = trainer::checkpoint::load_newest(
        &diverging.join("checkpoints"),
        || UNetConfig::tiny().init(&Device::flex()),
        trainer::train::optimizer(),
        &Device::flex(),
    )
    .unwrap()
    .expect("the last good checkpoint loads");
    assert_eq!(last_good.path, kept[0]);
    assert_eq!(last_good.state.counters.step, failed_step - 1);
    for file in ["model.bpk", "ema.bpk"] {
        let tensors = parameters(&kept[0].join(file));
        assert!(
            tensors.iter().all(|(_, values)| values.iter().all(|v| v.is_finite())),
            "{file} of the last good checkpoint holds non-finite weights"
        );
    }

    // 6. A data folder without images is a clear error.
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let output = trainer(&[
        "train",
        "--data",
        empty.to_str().unwrap(),
        "--run",
        root.join("e").to_str().unwrap(),
        "--config",
        "tiny",
        "--device",
        "cpu",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains(empty.to_str().unwrap()));

    std::fs::remove_dir_all(&root).unwrap();
}
