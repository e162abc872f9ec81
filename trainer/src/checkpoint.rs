//! Checkpoints: model, EMA and optimiser state, and the training position, in one folder per
//! step under `RUN/checkpoints/`. Written to a temporary folder and renamed into place, so a
//! checkpoint is either complete or absent; every file's SHA-256 is recorded, so a checkpoint
//! damaged later (a truncated copy, a full disk) is detected and the previous one used.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::optim::record::OptimizerRecord;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Bytes, Device};
use ddpm_avatars::UNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How many checkpoints are kept (the newest, and one to fall back to).
pub const KEEP: usize = 2;

const MODEL_FILE: &str = "model.bpk";
const EMA_FILE: &str = "ema.bpk";
const OPTIMIZER_FILE: &str = "optimizer.bin";
const STATE_FILE: &str = "state.json";

/// How much training a run's lineage has done (its `--init-from` parents included).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Optimiser steps completed.
    pub step: u64,
    /// Training images seen.
    pub images_seen: u64,
    /// CPU time the training processes used (user + system, all threads), in seconds; 0 in
    /// checkpoints from before it was counted.
    #[serde(default)]
    pub cpu_seconds: f64,
}

/// Where training stands; saved as `state.json` next to the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    /// Steps, images and CPU time so far.
    #[serde(flatten)]
    pub counters: Counters,
    /// SHA-256 of each tensor file, checked on load.
    pub files: Vec<(String, String)>,
}

/// What a checkpoint restores.
pub struct Restored {
    /// The trained model, on the training device (with autodiff).
    pub model: UNet,
    /// The averaged model.
    pub ema: UNet,
    /// The optimiser with its moments.
    pub optimizer: ModuleOptimizer,
    /// Step and counters.
    pub state: TrainingState,
    /// The checkpoint folder.
    pub path: PathBuf,
}

/// Writes a checkpoint for `counters.step` and deletes all but the newest [`KEEP`].
pub fn save(
    dir: &Path,
    model: &UNet,
    ema: &UNet,
    optimizer: &ModuleOptimizer,
    counters: Counters,
) -> Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = format!("step-{:09}", counters.step);
    let temporary = dir.join(format!(".partial-{name}"));
    let _ = fs::remove_dir_all(&temporary);
    fs::create_dir_all(&temporary).with_context(|| format!("creating {}", temporary.display()))?;

    let mut files = Vec::new();
    let mut write = |file: &str, bytes: &[u8]| -> Result<()> {
        let path = temporary.join(file);
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push((file.to_string(), hex_sha256(bytes)));
        Ok(())
    };
    write(MODEL_FILE, &module_bytes(model)?)?;
    write(EMA_FILE, &module_bytes(ema)?)?;
    let optimizer_bytes = optimizer
        .to_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("optimizer state: {e:?}"))?;
    write(OPTIMIZER_FILE, &optimizer_bytes)?;
    let state = TrainingState { counters, files };
    let json = serde_json::to_vec_pretty(&state)?;
    fs::write(temporary.join(STATE_FILE), json).context("writing state.json")?;

    let target = dir.join(&name);
    let _ = fs::remove_dir_all(&target);
    fs::rename(&temporary, &target)
        .with_context(|| format!("moving {} to {}", temporary.display(), target.display()))?;
    for old in list(dir)?.into_iter().skip(KEEP) {
        fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(target)
}

/// Loads the newest checkpoint that passes its checksums, printing why newer ones were
/// skipped. `fresh_model` gives the architecture; `optimizer` is a fresh optimiser to fill.
pub fn load_newest(
    dir: &Path,
    fresh_model: impl Fn() -> UNet,
    optimizer: ModuleOptimizer,
    device: &Device,
) -> Result<Option<Restored>> {
    let mut optimizer = Some(optimizer);
    for path in list(dir)? {
        match load_one(&path, &fresh_model, device) {
            Ok((model, ema, record, state)) => {
                let optimizer = optimizer.take().expect("used once").load_record(record);
                return Ok(Some(Restored { model, ema, optimizer, state, path }));
            }
            Err(problem) => {
                eprintln!(
                    "checkpoint {} is unusable ({problem:#}); trying the previous one",
                    path.display()
                );
            }
        }
    }
    Ok(None)
}

fn load_one(
    path: &Path,
    fresh_model: &impl Fn() -> UNet,
    device: &Device,
) -> Result<(UNet, UNet, OptimizerRecord, TrainingState)> {
    let state_bytes = fs::read(path.join(STATE_FILE)).context("reading state.json")?;
    let state: TrainingState =
        serde_json::from_slice(&state_bytes).context("parsing state.json")?;
    let read = |file: &str| -> Result<Vec<u8>> {
        let bytes = fs::read(path.join(file)).with_context(|| format!("reading {file}"))?;
        let expected =
            state.files.iter().find(|(name, _)| name == file).map(|(_, hash)| hash.as_str());
        if expected != Some(hex_sha256(&bytes).as_str()) {
            bail!("{file} does not match its recorded SHA-256 (truncated or damaged)");
        }
        Ok(bytes)
    };
    let model = load_module(fresh_model(), read(MODEL_FILE)?).context(MODEL_FILE)?;
    let ema = load_module(fresh_model().valid(), read(EMA_FILE)?).context(EMA_FILE)?;
    let record = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(read(OPTIMIZER_FILE)?))
        .map_err(|e| anyhow::anyhow!("optimizer state: {e:?}"))?;
    let _ = device;
    Ok((model, ema, record, state))
}

/// Checkpoint folders, newest first.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("step-"))
        })
        .collect();
    found.sort();
    found.reverse();
    Ok(found)
}

fn module_bytes(model: &UNet) -> Result<Vec<u8>> {
    let mut store = BurnpackStore::from_bytes(None);
    model.save_into(&mut store).map_err(|e| anyhow::anyhow!("serialising the model: {e:?}"))?;
    let bytes = store.get_bytes().map_err(|e| anyhow::anyhow!("serialising the model: {e:?}"))?;
    Ok(bytes.to_vec())
}

fn load_module(mut model: UNet, bytes: Vec<u8>) -> Result<UNet> {
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)));
    let result = model.load_from(&mut store).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        bail!("the checkpoint does not fit the model:\n{result}");
    }
    Ok(model)
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use burn::store::bridge;
    use ddpm_avatars::UNetConfig;

    use super::*;
    use crate::train::optimizer;

    /// A folder under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(label: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("trainer-checkpoint-{}-{label}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Every parameter of `model` by name, as f32 values.
    fn values(model: &UNet) -> Vec<(String, Vec<f32>)> {
        model
            .collect(None, None, false)
            .iter()
            .map(|t| (t.name.clone(), bridge::to_data(t).unwrap().try_into_vec_as().unwrap()))
            .collect()
    }

    fn folder_name(path: &Path) -> String {
        path.file_name().unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn kept_checkpoints_hold_exactly_what_was_saved_and_only_the_newest_two_are_kept() {
        let device = Device::flex();
        let dir = TempDir::new("kept");
        let config = UNetConfig::tiny();
        // Three checkpoints, each with its own randomly initialised model and EMA.
        let saved: Vec<(UNet, UNet)> =
            (0..3).map(|_| (config.init(&device), config.init(&device))).collect();
        assert_ne!(values(&saved[0].0), values(&saved[1].0), "the saved models are distinct");
        for (index, (model, ema)) in saved.iter().enumerate() {
            let step = index as u64 + 1;
            let counters = Counters { step, images_seen: step * 8, cpu_seconds: step as f64 * 1.5 };
            save(&dir.0, model, ema, &optimizer(), counters).unwrap();
        }
        let kept: Vec<String> = list(&dir.0).unwrap().iter().map(|p| folder_name(p)).collect();
        assert_eq!(kept, ["step-000000003", "step-000000002"], "KEEP = {KEEP}");

        let newest = load_newest(&dir.0, || config.init(&device), optimizer(), &device)
            .unwrap()
            .expect("a usable checkpoint");
        let counters = newest.state.counters;
        assert_eq!((counters.step, counters.images_seen, counters.cpu_seconds), (3, 24, 4.5));
        assert_eq!(values(&newest.model), values(&saved[2].0), "model of step 3");
        assert_eq!(values(&newest.ema), values(&saved[2].1), "EMA of step 3");

        // The one kept to fall back to holds step 2's tensors, not step 3's.
        let damaged = dir.0.join("step-000000003").join(EMA_FILE);
        let bytes = fs::read(&damaged).unwrap();
        fs::write(&damaged, &bytes[..bytes.len() - 1]).unwrap();
        let fallback = load_newest(&dir.0, || config.init(&device), optimizer(), &device)
            .unwrap()
            .expect("the previous checkpoint");
        assert_eq!(folder_name(&fallback.path), "step-000000002");
        let counters = fallback.state.counters;
        assert_eq!((counters.step, counters.images_seen, counters.cpu_seconds), (2, 16, 3.0));
        assert_eq!(values(&fallback.model), values(&saved[1].0), "model of step 2");
        assert_eq!(values(&fallback.ema), values(&saved[1].1), "EMA of step 2");
    }

    #[test]
    fn no_usable_checkpoint_is_none() {
        let dir = TempDir::new("none");
        let device = Device::flex();
        let fresh = || UNetConfig::tiny().init(&device);
        assert!(load_newest(&dir.0, fresh, optimizer(), &device).unwrap().is_none());
        fs::create_dir_all(dir.0.join("step-000000001")).unwrap();
        fs::write(dir.0.join("step-000000001").join(STATE_FILE), b"{").unwrap();
        assert!(load_newest(&dir.0, fresh, optimizer(), &device).unwrap().is_none());
    }
}
