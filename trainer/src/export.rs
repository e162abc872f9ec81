//! `export`: the EMA weights of a run's newest checkpoint as the published weights file.

use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::Device;
use ddpm_avatars::weights::{StorageDtype, TrainingInfo, WeightsMetadata, export_to_file};

use crate::{checkpoint, ema, train};

/// What was written.
#[derive(Debug)]
pub struct Exported {
    /// Steps of training in the weights.
    pub step: u64,
    /// EMA decay in effect at that step, as recorded in the metadata.
    pub ema_decay: f64,
    /// The run's target EMA decay (its `run.json`).
    pub target_ema_decay: f64,
    /// File size in bytes.
    pub bytes: u64,
    /// Short hash of the file, as in share links.
    pub short_hash: String,
}

/// Exports `run`'s EMA weights to `out` in `dtype`, with metadata and a golden fingerprint
/// computed from the weights exactly as stored (after rounding to `dtype`). The metadata's
/// `training.ema_decay` is the decay in effect at the checkpoint's step
/// ([`ema::effective_decay`]), not the run's target.
pub fn export(run: &Path, out: &Path, dtype: StorageDtype, device: &Device) -> Result<Exported> {
    let config = train::read_run_config(run)?;
    let restored = checkpoint::load_newest(
        &run.join("checkpoints"),
        || config.model.init(device),
        train::optimizer(),
        device,
    )?
    .with_context(|| format!("no usable checkpoint in {}", run.join("checkpoints").display()))?;
    let counters = restored.state.counters;
    let ema_decay = ema::effective_decay(config.ema_decay, counters.step);
    let training = TrainingInfo {
        steps: counters.step,
        images_seen: counters.images_seen,
        ema_decay,
        parent: config.parent.clone(),
        parents: config.lineage.clone(),
        cpu_hours: counters.cpu_seconds / 3600.0,
    };
    let metadata = WeightsMetadata::new(
        config.model.clone(),
        config.schedule,
        config.dataset.clone(),
        training,
    );
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    // Rounded to the stored precision first, so the fingerprint describes the file's weights.
    export_to_file(out, &restored.ema, metadata, dtype, device)?;
    let bytes = std::fs::read(out).with_context(|| format!("reading back {}", out.display()))?;
    Ok(Exported {
        step: counters.step,
        ema_decay,
        target_ema_decay: config.ema_decay,
        bytes: bytes.len() as u64,
        short_hash: ddpm_avatars::weights::short_hash(&bytes),
    })
}
