//! `trainer continue` as `make weights-continue` runs it, on the tiny model and the CPU: the
//! first file is committed, a worse one is refused and the committed file kept byte for byte,
//! the lineage is recorded, an interrupted continuation resumes, and bad committed files are
//! refused before anything is touched.

use std::path::Path;

use burn::tensor::Device;
use ddpm_avatars::weights::load_from_file;
use serde_json::Value;

mod cli_support;
use cli_support::{image_folder, succeed, trainer};

/// `trainer continue` of the tiny model on `data` into `run`, replacing `weights` if better.
fn continue_args(weights: &Path, data: &str, run: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["continue", "--weights", &weights.display().to_string()]
        .into_iter()
        .map(String::from)
        .collect();
    args.extend(
        ["--data", data, "--run", &run.display().to_string(), "--config", "tiny"]
            .into_iter()
            .map(String::from),
    );
    args.extend(
        ["--device", "cpu", "--batch-size", "8", "--warmup", "0", "--checkpoint-every", "100"]
            .map(String::from),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run(args: &[String]) -> String {
    succeed(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn promotion(run: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(run.join("promotion.json")).unwrap()).unwrap()
}

#[test]
fn continue_commits_the_first_file_refuses_a_worse_one_and_records_the_lineage() {
    let root = std::env::temp_dir().join(format!("ddpm-trainer-continue-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let data = image_folder(&root);
    let data = data.to_str().unwrap();
    let weights = root.join("committed.safetensors");
    let run_dir = root.join("run");
    let cpu = Device::flex();

    // 1. No committed file yet: trains from scratch and commits the result.
    let first = run(&continue_args(&weights, data, &run_dir, &["--steps", "40", "--lr", "2e-3"]));
    assert!(first.contains("no committed file"), "{first}");
    let committed = load_from_file(&weights, &cpu).expect("the first file is committed");
    let training = &committed.metadata.training;
    assert_eq!((training.steps, training.images_seen), (40, 40 * 8));
    assert!(training.parents.is_empty() && training.parent.is_none());
    assert!(training.cpu_hours > 0.0, "CPU time is counted: {}", training.cpu_hours);
    let first_mse = promotion(&run_dir)["candidate"]["eps_mse"].as_f64().unwrap();
    assert!(first_mse < 0.9, "40 steps learn something: held-out eps-MSE {first_mse}");

    // 2. A continuation that makes the model worse (a learning rate 25x too high) is refused:
    //    the committed file stays byte for byte. The old run moves aside: another parent.
    let before = std::fs::read(&weights).unwrap();
    let worse = run(&continue_args(&weights, data, &run_dir, &["--steps", "45", "--lr", "5e-2"]));
    assert!(worse.contains("moved to") && worse.contains("not better"), "{worse}");
    let aside = root.join("run.superseded-1");
    assert!(aside.join("checkpoints").exists() && aside.join("run.json").exists());
    assert!(!aside.join("dataset-16.cache").exists(), "the large, remakeable cache is dropped");
    assert!(run_dir.join("dataset-16.cache").exists());
    let verdict = promotion(&run_dir);
    assert_eq!(verdict["promoted"], false);
    let (candidate_mse, committed_mse) = (
        verdict["candidate"]["eps_mse"].as_f64().unwrap(),
        verdict["committed"]["eps_mse"].as_f64().unwrap(),
    );
    assert!(candidate_mse > committed_mse, "{candidate_mse} vs {committed_mse}");
    // Evaluated in the same process on the same held-out images as in step 1.
    assert!((committed_mse - first_mse).abs() < 1e-9, "{committed_mse} vs {first_mse}");
    assert_eq!(std::fs::read(&weights).unwrap(), before, "the committed file is untouched");
    // The refused candidate still records its lineage: 40 steps of the parent + 5.
    let candidate = load_from_file(&run_dir.join("candidate.safetensors"), &cpu).unwrap();
    let lineage = &candidate.metadata.training;
    assert_eq!(lineage.parents, vec![committed.short_hash.clone()]);
    assert_eq!(lineage.parent.as_deref(), Some(committed.short_hash.as_str()));
    assert_eq!((lineage.steps, lineage.images_seen), (45, 45 * 8));
    assert!(lineage.cpu_hours > training.cpu_hours, "CPU-hours add up across the lineage");

    // 3. An interrupted continuation (a run of the committed file with checkpoints) resumes
    //    instead of starting over; with a sane learning rate it may or may not beat the
    //    committed file in 4 steps, and the decision must follow the two numbers.
    let resumed_run = root.join("resumed");
    let init_from = ["--init-from", weights.to_str().unwrap()];
    let mut interrupted = continue_args(&weights, data, &resumed_run, &["--steps", "42"]);
    interrupted[0] = "train".into();
    interrupted.drain(1..3); // no --weights
    interrupted.extend(init_from.map(String::from));
    interrupted.extend(["--lr", "1e-3"].map(String::from));
    run(&interrupted);
    let resumed = run(&continue_args(&weights, data, &resumed_run, &["--steps", "44"]));
    assert!(resumed.contains("resuming it") && resumed.contains("resuming from"), "{resumed}");
    let verdict = promotion(&resumed_run);
    let better =
        verdict["candidate"]["eps_mse"].as_f64() < verdict["committed"]["eps_mse"].as_f64();
    assert_eq!(verdict["promoted"], better, "{verdict}");
    let now = std::fs::read(&weights).unwrap();
    let candidate_bytes = std::fs::read(resumed_run.join("candidate.safetensors")).unwrap();
    assert_eq!(now == candidate_bytes, better, "replaced exactly when better");
    assert_eq!(now == before, !better);

    // 4. A committed file of another config, or a broken one, is refused before anything
    //    happens, and stays as it is.
    let other = trainer(
        &continue_args(&weights, data, &root.join("other"), &["--steps", "1"])
            .iter()
            .map(|a| if a == "tiny" { "small" } else { a.as_str() })
            .collect::<Vec<_>>(),
    );
    let message = String::from_utf8_lossy(&other.stderr);
    assert!(
        !other.status.success() && message.contains("differs from --config small"),
        "{message}"
    );
    let broken = root.join("broken.safetensors");
    std::fs::write(&broken, &now[..now.len() / 2]).unwrap();
    let refused = trainer(
        &continue_args(&broken, data, &resumed_run, &["--steps", "50"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(!refused.status.success());
    assert_eq!(std::fs::read(&broken).unwrap(), &now[..now.len() / 2]);
    assert!(!root.join("other").exists() && !root.join("resumed.superseded-1").exists());
    std::fs::remove_dir_all(&root).unwrap();
}
