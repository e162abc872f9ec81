//! The command line: one clap struct per command, each flag documented for `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ddpm_avatars::sampler::{DdpmVariance, TimestepSpacing};
use ddpm_avatars::weights::StorageDtype;
use trainer::device::DeviceChoice;
use trainer::precision::Precision;

// On the clap items below, `///` is `--help` text written for users (clap reads it); notes
// for readers of the code use `//`.

#[derive(Parser)]
#[command(
    version,
    about = "Train and publish the ddpm-avatars diffusion model",
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Build a training dataset.
    #[command(subcommand)]
    Data(DataCommand),
    /// Train the U-Net on a folder of images (PNG, JPEG, WebP; searched recursively).
    Train(TrainArgs),
    /// Improve a committed weights file: train from it (or from scratch if it does not exist
    /// yet), export, evaluate the new file and the committed one on the same held-out images,
    /// and replace the committed file only if the new one is better. An interrupted
    /// continuation resumes from its last checkpoint.
    Continue(ContinueArgs),
    /// Export a run's EMA weights as the self-describing .safetensors file the page loads.
    Export(ExportArgs),
    /// Sample avatars from a weights file into a grid PNG.
    Sample(SampleArgs),
    /// Held-out eps-MSE of a weights file at fixed (t, eps); comparable between runs.
    Eval(EvalArgs),
    /// Training img/s and sampling ms/step of the default model: one device, or (--all) every
    /// backend this build has, side by side in one table.
    Bench(BenchArgs),
}

#[derive(Subcommand)]
pub enum DataCommand {
    /// The built-in set: DiceBear avatars (six styles, pastel backgrounds) rendered at 64x64.
    Avatars {
        /// Number of avatars (seeds 0..count).
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        /// Output folder.
        #[arg(long, default_value = "data/avatars")]
        out: PathBuf,
    },
    /// Decodes an image folder into one dataset file (the images as bytes, the held-out
    /// split), usable as `--data` by train and eval: about 10x smaller than the PNGs once
    /// xz-compressed, which is how a GPU session carries the avatar set.
    Pack {
        /// Image folder.
        #[arg(long)]
        data: PathBuf,
        /// Image size the model trains at.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Dataset file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
pub struct DeviceArg {
    /// Where to compute: vulkan (GPU), wgpu (GPU, automatic API), cuda (NVIDIA GPU, a build
    /// with `--features cuda`), libtorch (the CPU through PyTorch's kernels, a build with
    /// `--features tch`) or cpu (burn's flex). Default: the fastest this build has.
    #[arg(long, value_enum)]
    pub device: Option<DeviceChoice>,
}

impl DeviceArg {
    /// The `--device` flag, or the best device this build has.
    pub fn choice(&self) -> DeviceChoice {
        self.device.unwrap_or_else(DeviceChoice::default_choice)
    }
}

#[derive(Args)]
pub struct TrainArgs {
    /// Folder of training images.
    #[arg(long)]
    pub data: PathBuf,
    /// Run folder: checkpoints, samples, loss curve and log go here.
    #[arg(long)]
    pub run: PathBuf,
    /// Model size: `default` (64x64, 8.9 M parameters, for GPUs), `small` (64x64, 1.2 M, the
    /// CPU-sized model), `tiny` (16x16, for tests) or a JSON file with a UNetConfig.
    #[arg(long, default_value = "default")]
    pub config: String,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Peak learning rate (after warm-up).
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// Linear learning-rate warm-up steps (again after --init-from: its optimiser is fresh).
    #[arg(long, default_value_t = 1000)]
    pub warmup: u64,
    /// Global gradient-norm clip.
    #[arg(long, default_value_t = 1.0)]
    pub grad_clip: f32,
    /// Target EMA decay of the published weights, reached after a (1+n)/(10+n) warm-up; the
    /// exported metadata records the decay in effect at the exported step.
    #[arg(long, default_value_t = 0.9999)]
    pub ema_decay: f64,
    /// Seed of batch order, timesteps, noise and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop when this many steps are done in total (an --init-from parent's steps included).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Stop after this many minutes of wall clock (after the current step), save, exit 0.
    #[arg(long)]
    pub max_minutes: Option<f64>,
    /// Checkpoint, sample grid and loss curve every N steps.
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_every: u64,
    /// A line in train.log every N steps.
    #[arg(long, default_value_t = 50)]
    pub log_every: u64,
    /// Continue from the run's newest valid checkpoint (its run.json settings are used).
    #[arg(long)]
    pub resume: bool,
    /// Start model and EMA from a published weights file (fresh optimiser; the step count and
    /// the EMA warm-up continue from the parent's steps).
    #[arg(long, conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
    /// Dataset name for the weights' metadata (default: the folder's name).
    #[arg(long)]
    pub dataset_name: Option<String>,
    /// Licence line for the weights' metadata (default: read from DATA/LICENSE.md).
    #[arg(long)]
    pub licence: Option<String>,
    /// Arithmetic of each step: f32, or bf16 with f32 master weights (normalisation,
    /// attention, loss and Adam in f32). bf16 needs --device cuda or cpu.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
}

#[derive(Args)]
pub struct ContinueArgs {
    /// The committed weights file: the parent of this training, and the file a better result
    /// replaces (written by a rename, so it is never half-written).
    #[arg(long)]
    pub weights: PathBuf,
    /// When the weights were replaced, also write a grid of 64 avatars (seeds 0..64,
    /// 1000-step DDPM, clipping on) of the new file here.
    #[arg(long)]
    pub grid: Option<PathBuf>,
    /// Images per forward pass of the held-out evaluation.
    #[arg(long, default_value_t = 64)]
    pub eval_batch: usize,
    // --run, --data, --config, --max-minutes, ... as for `train`; --init-from and --resume
    // are chosen by the command.
    #[command(flatten)]
    pub train: TrainArgs,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Run folder.
    #[arg(long)]
    pub run: PathBuf,
    /// Weights file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Storage precision.
    #[arg(long, value_enum, default_value = "f16")]
    pub dtype: DtypeArg,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DtypeArg {
    F16,
    F32,
}

impl From<DtypeArg> for StorageDtype {
    fn from(dtype: DtypeArg) -> Self {
        match dtype {
            DtypeArg::F16 => StorageDtype::F16,
            DtypeArg::F32 => StorageDtype::F32,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SamplerArg {
    Ddpm,
    Ddim,
}

/// DDPM's `sigma_t^2` (Ho et al. 2020, section 3.2).
#[derive(Clone, Copy, ValueEnum)]
pub enum VarianceArg {
    /// beta-tilde, the posterior variance ("fixedsmall").
    Posterior,
    /// beta_t ("fixedlarge", the paper's CIFAR-10 run).
    Beta,
}

impl From<VarianceArg> for DdpmVariance {
    fn from(arg: VarianceArg) -> Self {
        match arg {
            VarianceArg::Posterior => Self::Posterior,
            VarianceArg::Beta => Self::Beta,
        }
    }
}

/// Which timesteps DDIM visits.
#[derive(Clone, Copy, ValueEnum)]
pub enum SpacingArg {
    /// i T / steps: 4 of 1000 steps visit 750, 500, 250, 0.
    Leading,
    /// T - 1 - i T / steps: 4 of 1000 steps visit 999, 749, 499, 249.
    Trailing,
}

impl From<SpacingArg> for TimestepSpacing {
    fn from(arg: SpacingArg) -> Self {
        match arg {
            SpacingArg::Leading => Self::Leading,
            SpacingArg::Trailing => Self::Trailing,
        }
    }
}

#[derive(Args)]
pub struct SampleArgs {
    /// Weights file.
    #[arg(long)]
    pub weights: PathBuf,
    /// Grid PNG to write.
    #[arg(long)]
    pub out: PathBuf,
    /// First seed; avatar i uses seed + i (as on the page).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of avatars.
    #[arg(long, default_value_t = 16)]
    pub count: usize,
    /// Reverse process.
    #[arg(long, value_enum, default_value = "ddpm")]
    pub sampler: SamplerArg,
    /// Steps (DDPM: all T; DDIM: 1..=T).
    #[arg(long)]
    pub steps: Option<usize>,
    /// DDIM noise scale (0: deterministic).
    #[arg(long, default_value_t = 0.0)]
    pub eta: f64,
    /// DDPM's noise variance (measured alike on an exact denoiser; see the README).
    #[arg(long, value_enum, default_value = "posterior")]
    pub variance: VarianceArg,
    /// DDIM's timesteps (leading measured better at few steps; see the README).
    #[arg(long, value_enum, default_value = "leading")]
    pub spacing: SpacingArg,
    /// Do not clip the predicted x0 (the seeds' plain formula).
    #[arg(long)]
    pub no_clip: bool,
    /// Integer upscale of the PNG.
    #[arg(long, default_value_t = 2)]
    pub scale: usize,
    /// Also write OUT-trajectory.png: x_t of each avatar at the --trajectory-at timesteps.
    #[arg(long)]
    pub trajectory: bool,
    /// Timesteps of the trajectory frames (1000 = x_T).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,900,800,700,600,500,400,300,200,100,50,0"
    )]
    pub trajectory_at: Vec<usize>,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Args)]
pub struct EvalArgs {
    /// Weights file.
    #[arg(long)]
    pub weights: PathBuf,
    /// The training images folder (its fixed held-out split is used).
    #[arg(long)]
    pub data: PathBuf,
    /// Decoded-image cache (default: in the system temp folder).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub device: DeviceArg,
    /// Training batch size.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Timed training steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Timed sampling steps per batch size.
    #[arg(long, default_value_t = 50)]
    pub sample_steps: usize,
    /// Untimed warm-up steps before each measurement.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Model: default, small, tiny or a JSON file.
    #[arg(long, default_value = "default")]
    pub config: String,
    /// Every backend this build has whose driver is present (cpu, vulkan, cuda), one column each,
    /// instead of `--device` alone.
    #[arg(long, conflicts_with = "device")]
    pub all: bool,
    /// Arithmetic of the training steps (see `train --precision`).
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
}

impl Command {
    /// The device the command computes on; `None` for commands that compute nothing.
    pub fn device_choice(&self) -> Option<DeviceChoice> {
        match self {
            Command::Train(args) => Some(args.device.choice()),
            Command::Continue(args) => Some(args.train.device.choice()),
            Command::Sample(args) => Some(args.device.choice()),
            Command::Eval(args) => Some(args.device.choice()),
            // With --all, burn's default device stays the CPU, which every machine has.
            Command::Bench(args) if args.all => Some(DeviceChoice::Cpu),
            Command::Bench(args) => Some(args.device.choice()),
            Command::Export(_) => Some(DeviceChoice::Cpu),
            Command::Data(_) => None,
        }
    }
}
