//! The training loop: L_simple (Ho et al. 2020, eq. 14 / Algorithm 1) with AdamW, linear
//! warm-up, global-norm gradient clipping and an EMA of the weights; checkpoints, sample
//! grids and a loss curve in the run folder; stops by step count, wall clock or Ctrl-C.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use cpu_time::ProcessTime;
use ddpm_avatars::weights::DatasetInfo;
use ddpm_avatars::{NoiseSchedule, ScheduleConfig, UNet, UNetConfig};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, Counters};
use crate::clip::clip_global_norm;
use crate::data::ImageDataset;
use crate::ema::Ema;
use crate::precision::{self, Precision};
use crate::progress::Progress;
use crate::report;

/// Everything that defines a run; written to `RUN/run.json` when the run starts and read
/// back by `--resume` and `export`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The U-Net.
    pub model: UNetConfig,
    /// The noise schedule.
    pub schedule: ScheduleConfig,
    /// Training images folder.
    pub data: PathBuf,
    /// Dataset name and licence, copied into exported weights.
    pub dataset: DatasetInfo,
    /// Images per optimiser step (128 in the paper).
    pub batch_size: usize,
    /// Peak learning rate (2e-4 in the paper).
    pub learning_rate: f64,
    /// Steps of linear warm-up from 0 to the peak rate.
    pub warmup_steps: u64,
    /// Global gradient-norm limit (1.0 in the paper).
    pub grad_clip: f32,
    /// Target EMA decay (0.9999 in the paper), reached after a warm-up (see
    /// [`crate::ema::decay_at`]); exported weights record the decay in effect at their step.
    pub ema_decay: f64,
    /// Seed of the batch order, timesteps, noise and dropout.
    pub seed: u64,
    /// Checkpoint, sample grid and loss curve every this many steps.
    pub checkpoint_every: u64,
    /// A log line every this many steps.
    pub log_every: u64,
    /// Short hash of the weights file this run started from (`--init-from`).
    pub parent: Option<String>,
    /// Steps already in the parent's weights: this run's step count starts there.
    pub parent_steps: u64,
    /// Images seen by the parent.
    pub parent_images: u64,
    /// CPU-seconds of training in the parent's lineage (0 for parents from before they were
    /// counted).
    #[serde(default)]
    pub parent_cpu_seconds: f64,
    /// Short hashes of every weights file in the parent's lineage, oldest first, ending with
    /// `parent`.
    #[serde(default)]
    pub lineage: Vec<String>,
    /// The arithmetic of each step (the weights stay f32); f32 for runs from before it existed.
    #[serde(default)]
    pub precision: Precision,
}

/// When to stop (whichever comes first).
#[derive(Debug, Clone, Copy, Default)]
pub struct StopRule {
    /// Stop once this many steps are done in total (across resumes, and counting an
    /// `--init-from` parent's steps).
    pub max_steps: Option<u64>,
    /// Stop after this much wall-clock time in this invocation.
    pub max_duration: Option<Duration>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Steps done in total.
    pub step: u64,
    /// Why it stopped.
    pub reason: String,
    /// Loss of the first step of this invocation, and of the last.
    pub first_loss: Option<f32>,
    /// Loss of the last step.
    pub last_loss: Option<f32>,
}

/// What the training loop needs besides the config.
pub struct Session<'a> {
    /// Run folder.
    pub run: &'a Path,
    /// Training device (autodiff is added here).
    pub device: Device,
    /// The images.
    pub dataset: &'a ImageDataset,
    /// When to stop.
    pub stop: StopRule,
    /// Set from outside (Ctrl-C) to stop after the current step.
    pub interrupted: Arc<AtomicBool>,
    /// Continue from the newest valid checkpoint.
    pub resume: bool,
    /// Weights to start from (`--init-from`), already validated: both the trained model and
    /// its EMA start from them (a published file holds its run's EMA weights).
    pub init_from: Option<UNet>,
    /// Draw a progress bar (a TTY) or only log lines.
    pub progress_bar: bool,
}

/// The paper's Adam settings (beta 0.9 / 0.999, eps 1e-8, no weight decay), set explicitly
/// because burn's AdamW defaults differ (eps 1e-5, weight decay 1e-4).
pub fn optimizer() -> ModuleOptimizer {
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(0.0)
        .init()
}

/// Learning rate at 0-based `step`: linear warm-up to the peak, then constant (the paper).
/// The warm-up counts from the step where this run's optimiser started fresh: 0, or an
/// `--init-from` parent's step count (its Adam moments are not in the weights file).
pub fn learning_rate(config: &RunConfig, step: u64) -> f64 {
    if config.warmup_steps == 0 {
        return config.learning_rate;
    }
    let steps_with_this_optimizer = step.saturating_sub(config.parent_steps) + 1;
    config.learning_rate * (steps_with_this_optimizer as f64 / config.warmup_steps as f64).min(1.0)
}

/// A per-step seed for burn's generator (noise and dropout) and the timestep draw.
fn step_seed(seed: u64, step: u64) -> u64 {
    // SplitMix64 finaliser: neighbouring steps get unrelated seeds.
    let mut z = seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform timesteps `t ~ U{0, .., T-1}` for one step (Algorithm 1, line 3).
fn draw_timesteps(seed: u64, step: u64, batch: usize, total: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(step_seed(seed, step));
    (0..batch).map(|_| (rng.next_u64() % total as u64) as usize).collect()
}

/// What every training step reads: the run's settings, its schedule, its data and the
/// (autodiff) device it trains on.
#[derive(Clone, Copy)]
pub struct StepContext<'a> {
    /// The run's settings.
    pub config: &'a RunConfig,
    /// The noise schedule (`config.schedule`, computed once).
    pub schedule: &'a NoiseSchedule,
    /// The training images.
    pub dataset: &'a ImageDataset,
    /// The device, with autodiff.
    pub device: &'a Device,
}

/// One optimiser step of L_simple on the batch of `step` (data, timesteps and noise drawn
/// from (seed, step)). Returns the updated model and the loss (read back, so a non-finite
/// value stops the run before it reaches the weights).
pub fn train_step(
    model: UNet,
    optimizer: &mut ModuleOptimizer,
    context: StepContext<'_>,
    step: u64,
) -> Result<(UNet, f32)> {
    let StepContext { config, schedule, dataset, device } = context;
    device.seed(step_seed(config.seed, step));
    let size = dataset.image_size();
    let batch = dataset.batch(config.seed, step, config.batch_size);
    let shape = [config.batch_size, 3, size, size];
    let x0 = Tensor::<4>::from_data(TensorData::new(batch.values, shape), device);
    let timesteps = draw_timesteps(config.seed, step, config.batch_size, schedule.timesteps());
    let noise = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device);
    let inputs = StepInputs { x0, timesteps, noise };
    optimise_on(model, optimizer, inputs, config, schedule, step)
}

/// What one training step learns from: clean images `x0` (`[batch, 3, size, size]`, in
/// [-1, 1]), a timestep per image and the noise `eps` (same shape as `x0`).
pub struct StepInputs {
    /// The clean images.
    pub x0: Tensor<4>,
    /// `t` of each image, `0..T`.
    pub timesteps: Vec<usize>,
    /// `eps ~ N(0, I)`.
    pub noise: Tensor<4>,
}

/// The optimiser step of [`train_step`] on given inputs: noise `x0` to `x_t`, take the
/// gradient of L_simple, clip it, apply Adam at the learning rate of `step`. Separate so the
/// same inputs can be fed to two devices (the GPU path is checked against the CPU this way).
pub fn optimise_on(
    model: UNet,
    optimizer: &mut ModuleOptimizer,
    inputs: StepInputs,
    config: &RunConfig,
    schedule: &NoiseSchedule,
    step: u64,
) -> Result<(UNet, f32)> {
    let StepInputs { x0, timesteps, noise } = inputs;
    let device = x0.device();
    let x_t = schedule.q_sample(x0, &timesteps, noise.clone());
    let t: Vec<f32> = timesteps.iter().map(|&t| t as f32).collect();
    let t = Tensor::<1>::from_data(TensorData::new(t, [timesteps.len()]), &device);
    // L_simple = || eps - eps_theta(x_t, t) ||^2, averaged over pixels and batch (eq. 14),
    // in f32 whatever the precision of the U-Net's arithmetic.
    let prediction = precision::predict_in(config.precision, &model, x_t, t);
    let loss = (prediction - noise).square().mean();
    let loss_value: f32 = loss.clone().into_scalar();
    if !loss_value.is_finite() {
        bail!("the loss became {loss_value} at step {}; the weights were not updated", step + 1);
    }
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
    clip_global_norm(&model, &mut grads, config.grad_clip);
    let model = optimizer.step(learning_rate(config, step), model, grads);
    Ok((model, loss_value))
}

/// Trains until the stop rule, Ctrl-C or an error; checkpoints at the end in every case
/// except a non-finite loss (which keeps the last good checkpoint).
pub fn run(config: &RunConfig, session: Session<'_>) -> Result<Outcome> {
    let device = session.device.clone().autodiff();
    let schedule = NoiseSchedule::new(config.schedule);
    let checkpoints = session.run.join("checkpoints");
    let fresh_model = || config.model.init(&device);

    device.seed(config.seed);
    let (mut model, mut ema, mut optimizer, mut counters) = if session.resume {
        let restored = checkpoint::load_newest(&checkpoints, fresh_model, optimizer(), &device)?
            .with_context(|| {
                format!("--resume: no usable checkpoint in {}", checkpoints.display())
            })?;
        let counters = restored.state.counters;
        println!("resuming from {} (step {})", restored.path.display(), counters.step);
        let ema = Ema { model: restored.ema, decay: config.ema_decay };
        (restored.model, ema, restored.optimizer, counters)
    } else {
        let model = match session.init_from {
            // Loaded on a plain device, the weights' parameters track no gradients; `fork` keeps
            // that, and `train` turns tracking (and dropout) back on for the autodiff device.
            Some(weights) => weights.fork(&device).train(),
            None => fresh_model(),
        };
        let ema = Ema::new(&model, config.ema_decay);
        let counters = Counters {
            step: config.parent_steps,
            images_seen: config.parent_images,
            cpu_seconds: config.parent_cpu_seconds,
        };
        (model, ema, optimizer(), counters)
    };
    let mut step = counters.step;
    // CPU time of this process (every thread), added to what the lineage used before.
    let cpu_clock = ProcessTime::now();
    let cpu_seconds_before = counters.cpu_seconds;

    let mut metrics = report::Metrics::load(session.run, step)?;
    let save = |model: &UNet, ema: &Ema, optimizer: &ModuleOptimizer, counters, metrics: &_| {
        save_everything(session.run, config, model, ema, optimizer, counters, metrics)
    };
    let context =
        StepContext { config, schedule: &schedule, dataset: session.dataset, device: &device };
    let started = Instant::now();
    let mut progress =
        Progress::new(session.progress_bar, step, session.stop.max_steps, session.run)?;
    let (mut first_loss, mut last_loss) = (None, None);
    let mut last_saved = step;
    let reason = loop {
        if session.stop.max_steps.is_some_and(|max| step >= max) {
            break format!("reached {step} steps");
        }
        if session.stop.max_duration.is_some_and(|max| started.elapsed() >= max) {
            break format!(
                "wall-clock limit reached after {:.1} min",
                started.elapsed().as_secs_f64() / 60.0
            );
        }
        if session.interrupted.load(Ordering::SeqCst) {
            break "interrupted".to_string();
        }
        let (updated, loss) =
            train_step(model, &mut optimizer, context, step).inspect_err(|_| progress.abandon())?;
        model = updated;
        // `step` counts the whole lineage, so a continuation of a parent keeps its place in
        // the EMA warm-up instead of restarting at a decay of 0.1 and forgetting the parent.
        ema.update(&model, step);
        step += 1;
        counters.step = step;
        counters.images_seen += config.batch_size as u64;
        counters.cpu_seconds = cpu_seconds_before + cpu_clock.elapsed().as_secs_f64();
        first_loss.get_or_insert(loss);
        last_loss = Some(loss);
        metrics.push(step, loss, learning_rate(config, step - 1));
        progress.step(step, loss, config.batch_size, step % config.log_every == 0)?;
        if step % config.checkpoint_every == 0 {
            save(&model, &ema, &optimizer, counters, &metrics)?;
            last_saved = step;
        }
    };
    if step != last_saved || !checkpoints.exists() {
        counters.cpu_seconds = cpu_seconds_before + cpu_clock.elapsed().as_secs_f64();
        save(&model, &ema, &optimizer, counters, &metrics)?;
    }
    progress.finish(&reason)?;
    Ok(Outcome { step, reason, first_loss, last_loss })
}

fn save_everything(
    run: &Path,
    config: &RunConfig,
    model: &UNet,
    ema: &Ema,
    optimizer: &ModuleOptimizer,
    counters: Counters,
    metrics: &report::Metrics,
) -> Result<()> {
    checkpoint::save(&run.join("checkpoints"), model, &ema.model, optimizer, counters)?;
    metrics.save(run)?;
    let grid = run.join("samples").join(format!("step-{:09}.png", counters.step));
    report::sample_grid(&ema.model, &config.model, config.schedule, &grid)?;
    report::loss_curve(metrics, &run.join("loss.png"))
}

/// Reads `RUN/run.json`.
pub fn read_run_config(run: &Path) -> Result<RunConfig> {
    let path = run.join("run.json");
    let bytes = std::fs::read(&path)
        .with_context(|| format!("reading {} (is this a run folder?)", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// Writes `RUN/run.json` atomically.
pub fn write_run_config(run: &Path, config: &RunConfig) -> Result<()> {
    std::fs::create_dir_all(run).with_context(|| format!("creating {}", run.display()))?;
    report::write_atomically(&run.join("run.json"), &serde_json::to_vec_pretty(config)?)
}

#[cfg(test)]
mod tests {
    use super::{Precision, RunConfig, learning_rate};
    use ddpm_avatars::weights::DatasetInfo;
    use ddpm_avatars::{ScheduleConfig, UNetConfig};

    fn config(warmup_steps: u64, parent_steps: u64) -> RunConfig {
        RunConfig {
            model: UNetConfig::tiny(),
            schedule: ScheduleConfig::default(),
            data: "images".into(),
            dataset: DatasetInfo { name: "test".into(), licence: "CC0".into() },
            batch_size: 8,
            learning_rate: 2e-4,
            warmup_steps,
            grad_clip: 1.0,
            ema_decay: 0.9999,
            seed: 0,
            checkpoint_every: 10,
            log_every: 10,
            parent: (parent_steps > 0).then(|| "0123456789ab".into()),
            parent_steps,
            parent_images: parent_steps * 8,
            parent_cpu_seconds: 0.0,
            lineage: Vec::new(),
            precision: Precision::F32,
        }
    }

    #[test]
    fn learning_rate_warms_up_linearly_then_stays_at_the_peak() {
        let fresh = config(100, 0);
        // By hand: 2e-4 * 1 / 100 = 2e-6; 2e-4 * 50 / 100 = 1e-4.
        assert!((learning_rate(&fresh, 0) - 2e-6).abs() < 1e-15);
        assert!((learning_rate(&fresh, 49) - 1e-4).abs() < 1e-15);
        assert_eq!(learning_rate(&fresh, 99), 2e-4);
        assert_eq!(learning_rate(&fresh, 5000), 2e-4);
        assert_eq!(learning_rate(&config(0, 0), 0), 2e-4);
    }

    #[test]
    fn learning_rate_warms_up_again_for_the_fresh_optimiser_of_an_init_from_run() {
        let continuation = config(100, 5000);
        assert!((learning_rate(&continuation, 5000) - 2e-6).abs() < 1e-15);
        assert!((learning_rate(&continuation, 5049) - 1e-4).abs() < 1e-15);
        assert_eq!(learning_rate(&continuation, 5099), 2e-4);
    }
}
