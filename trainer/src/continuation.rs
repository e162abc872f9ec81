//! `trainer continue`: the command that improves the committed weights session after session
//! (`make weights-continue`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ddpm_avatars::sampler::DdpmVariance;
use ddpm_avatars::weights::StorageDtype;
use ddpm_avatars::{SamplerConfig, SamplerKind};
use trainer::device::DeviceChoice;
use trainer::{export, promote, sample, train};

use crate::cli::ContinueArgs;
use crate::{load_parent, load_training_images, model_config, train_command};

/// `continue`: resume the run if it continues the committed file, else start it from that
/// file; then export, compare on the held-out images and promote only an improvement.
pub(crate) fn continue_command(args: ContinueArgs) -> Result<()> {
    let ContinueArgs { weights, grid, eval_batch, mut train } = args;
    if train.resume || train.init_from.is_some() {
        bail!("continue chooses --resume / --init-from itself (from --weights and --run)");
    }
    // Checked before anything is touched: a broken, foreign or other-config committed file
    // stops the command here, and stays as it is.
    let model = model_config(&train.config)?;
    let committed_hash = if weights.exists() {
        let parent = load_parent(&weights, &model, &train.config, &DeviceChoice::Cpu.device()?)?;
        Some(parent.short_hash)
    } else {
        None
    };
    if train.run.join("checkpoints").exists() {
        let previous = train::read_run_config(&train.run).ok();
        let continues_committed =
            previous.as_ref().is_some_and(|run| run.parent == committed_hash && run.model == model);
        if continues_committed {
            println!("{} continues {}: resuming it", train.run.display(), weights.display());
            train.resume = true;
        } else {
            let aside = superseded_name(&train.run);
            std::fs::rename(&train.run, &aside)
                .with_context(|| format!("moving {} aside", train.run.display()))?;
            remove_dataset_caches(&aside)?;
            println!(
                "{} trained from another parent: moved to {}",
                train.run.display(),
                aside.display()
            );
        }
    }
    if !train.resume && committed_hash.is_some() {
        train.init_from = Some(weights.clone());
    }
    let (run, device_arg) = (train.run.clone(), train.device.device);
    train_command(train)?;

    let candidate = run.join("candidate.safetensors");
    let exported =
        export::export(&run, &candidate, StorageDtype::F16, &DeviceChoice::Cpu.device()?)?;
    println!(
        "exported step {} to {} ({})",
        exported.step,
        candidate.display(),
        exported.short_hash
    );
    let choice = device_arg.unwrap_or_else(DeviceChoice::default_choice);
    let device = choice.device()?;
    let config = train::read_run_config(&run)?;
    let dataset = load_training_images(&config.data, &run, &config)?;
    let verdict = promote::promote(&candidate, &weights, &dataset.heldout(), eval_batch, &device)?;
    println!("{verdict}");
    trainer::report::write_atomically(
        &run.join("promotion.json"),
        &serde_json::to_vec_pretty(&verdict)?,
    )?;
    if let (true, Some(grid)) = (verdict.promoted, grid) {
        let request = sample::SampleRequest {
            seed: 0,
            count: 64,
            sampler: SamplerConfig {
                kind: SamplerKind::Ddpm { variance: DdpmVariance::Posterior },
                steps: config.schedule.timesteps,
                clip_x0: true,
            },
            scale: 1,
            trajectory_at: Vec::new(),
        };
        for path in sample::sample(&weights, &grid, &request, &device)? {
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// Deletes the decoded-image caches (`dataset-SIZE.cache`) of a run moved aside: the one large
/// file of a run (245 MB for the avatar set at 64x64), made again from the images when needed.
fn remove_dataset_caches(run: &Path) -> Result<()> {
    for entry in std::fs::read_dir(run).with_context(|| format!("reading {}", run.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with("dataset-") && name.ends_with(".cache") {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// `RUN.superseded-N` for the first N not taken.
fn superseded_name(run: &Path) -> PathBuf {
    let mut name = run.as_os_str().to_owned();
    name.push(".superseded");
    (1..)
        .map(|n| {
            let mut candidate = name.clone();
            candidate.push(format!("-{n}"));
            PathBuf::from(candidate)
        })
        .find(|candidate| !candidate.exists())
        .expect("some number is free")
}
