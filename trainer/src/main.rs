//! `trainer`: build the avatar dataset, train the DDPM U-Net, export, sample, evaluate and
//! benchmark. `trainer <command> --help` documents every flag.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ddpm_avatars::weights::{DatasetInfo, StorageDtype, load_from_file};
use ddpm_avatars::{SamplerConfig, SamplerKind, ScheduleConfig, UNetConfig};
use trainer::data::ImageDataset;
use trainer::device::DeviceChoice;
use trainer::train::{RunConfig, Session, StopRule};
use trainer::{avatars, bench, eval, export, sample, train};

#[derive(Parser)]
#[command(
    version,
    about = "Train and publish the ddpm-avatars diffusion model",
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a training dataset.
    #[command(subcommand)]
    Data(DataCommand),
    /// Train the U-Net on a folder of images (PNG, JPEG, WebP; searched recursively).
    Train(TrainArgs),
    /// Export a run's EMA weights as the self-describing .safetensors file the page loads.
    Export(ExportArgs),
    /// Sample avatars from a weights file into a grid PNG.
    Sample(SampleArgs),
    /// Held-out eps-MSE of a weights file at fixed (t, eps); comparable between runs.
    Eval(EvalArgs),
    /// Training img/s and sampling ms/step of the default model on one device.
    Bench(BenchArgs),
}

#[derive(Subcommand)]
enum DataCommand {
    /// The built-in set: DiceBear avatars (six styles, pastel backgrounds) rendered at 64x64.
    Avatars {
        /// Number of avatars (seeds 0..count).
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        /// Output folder.
        #[arg(long, default_value = "data/avatars")]
        out: PathBuf,
    },
}

#[derive(Args)]
struct DeviceArg {
    /// Where to compute: vulkan (GPU), wgpu (GPU, automatic API) or cpu.
    #[arg(long, value_enum)]
    device: Option<DeviceChoice>,
}

impl DeviceArg {
    fn choice(&self) -> DeviceChoice {
        self.device.unwrap_or_else(DeviceChoice::default_choice)
    }
}

#[derive(Args)]
struct TrainArgs {
    /// Folder of training images.
    #[arg(long)]
    data: PathBuf,
    /// Run folder: checkpoints, samples, loss curve and log go here.
    #[arg(long)]
    run: PathBuf,
    /// Model size: `default` (64x64, 8.9 M parameters), `tiny` (16x16, for tests) or a JSON
    /// file with a UNetConfig.
    #[arg(long, default_value = "default")]
    config: String,
    #[command(flatten)]
    device: DeviceArg,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Peak learning rate (after warm-up).
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = 1000)]
    warmup: u64,
    /// Global gradient-norm clip.
    #[arg(long, default_value_t = 1.0)]
    grad_clip: f32,
    /// EMA decay of the published weights.
    #[arg(long, default_value_t = 0.9999)]
    ema_decay: f64,
    /// Seed of batch order, timesteps, noise and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop when this many steps are done in total.
    #[arg(long)]
    steps: Option<u64>,
    /// Stop after this many minutes of wall clock (after the current step), save, exit 0.
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Checkpoint, sample grid and loss curve every N steps.
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: u64,
    /// A line in train.log every N steps.
    #[arg(long, default_value_t = 50)]
    log_every: u64,
    /// Continue from the run's newest valid checkpoint (its run.json settings are used).
    #[arg(long)]
    resume: bool,
    /// Start model and EMA from a published weights file (fresh optimiser).
    #[arg(long, conflicts_with = "resume")]
    init_from: Option<PathBuf>,
    /// Dataset name for the weights' metadata (default: the folder's name).
    #[arg(long)]
    dataset_name: Option<String>,
    /// Licence line for the weights' metadata (default: read from DATA/LICENSE.md).
    #[arg(long)]
    licence: Option<String>,
}

#[derive(Args)]
struct ExportArgs {
    /// Run folder.
    #[arg(long)]
    run: PathBuf,
    /// Weights file to write.
    #[arg(long)]
    out: PathBuf,
    /// Storage precision.
    #[arg(long, value_enum, default_value = "f16")]
    dtype: DtypeArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum DtypeArg {
    F16,
    F32,
}

#[derive(Clone, Copy, ValueEnum)]
enum SamplerArg {
    Ddpm,
    Ddim,
}

#[derive(Args)]
struct SampleArgs {
    /// Weights file.
    #[arg(long)]
    weights: PathBuf,
    /// Grid PNG to write.
    #[arg(long)]
    out: PathBuf,
    /// First seed; avatar i uses seed + i (as on the page).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of avatars.
    #[arg(long, default_value_t = 16)]
    count: usize,
    /// Reverse process.
    #[arg(long, value_enum, default_value = "ddpm")]
    sampler: SamplerArg,
    /// Steps (DDPM: all T; DDIM: 1..=T).
    #[arg(long)]
    steps: Option<usize>,
    /// DDIM noise scale (0: deterministic).
    #[arg(long, default_value_t = 0.0)]
    eta: f64,
    /// Do not clip the predicted x0 (the seeds' plain formula).
    #[arg(long)]
    no_clip: bool,
    /// Integer upscale of the PNG.
    #[arg(long, default_value_t = 2)]
    scale: usize,
    /// Also write OUT-trajectory.png: x_t of each avatar at the --trajectory-at timesteps.
    #[arg(long)]
    trajectory: bool,
    /// Timesteps of the trajectory frames (1000 = x_T).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,900,800,700,600,500,400,300,200,100,50,0"
    )]
    trajectory_at: Vec<usize>,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args)]
struct EvalArgs {
    /// Weights file.
    #[arg(long)]
    weights: PathBuf,
    /// The training images folder (its fixed held-out split is used).
    #[arg(long)]
    data: PathBuf,
    /// Decoded-image cache (default: in the system temp folder).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    device: DeviceArg,
    /// Training batch size.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Timed training steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Timed sampling steps per batch size.
    #[arg(long, default_value_t = 50)]
    sample_steps: usize,
    /// Untimed warm-up steps before each measurement.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Model: default, tiny or a JSON file.
    #[arg(long, default_value = "default")]
    config: String,
}

fn main() {
    let cli = Cli::parse();
    select_default_device(&cli);
    if let Err(error) = run(cli) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// Makes burn's `Device::default()` the device the command uses (see
/// [`DeviceChoice::burn_device_name`]), unless the user set `BURN_DEVICE` themselves.
#[allow(unsafe_code)]
fn select_default_device(cli: &Cli) {
    let choice = match &cli.command {
        Command::Train(args) => args.device.choice(),
        Command::Sample(args) => args.device.choice(),
        Command::Eval(args) => args.device.choice(),
        Command::Bench(args) => args.device.choice(),
        Command::Export(_) => DeviceChoice::Cpu,
        Command::Data(_) => return,
    };
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::set_var("BURN_DEVICE", choice.burn_device_name()) };
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Data(DataCommand::Avatars { count, out }) => {
            let report = avatars::build_avatar_dataset(count, &out)?;
            println!("{report}");
            Ok(())
        }
        Command::Train(args) => train_command(args),
        Command::Export(args) => {
            let dtype = match args.dtype {
                DtypeArg::F16 => StorageDtype::F16,
                DtypeArg::F32 => StorageDtype::F32,
            };
            let exported =
                export::export(&args.run, &args.out, dtype, &DeviceChoice::Cpu.device()?)?;
            println!(
                "wrote {} ({:.1} MB, step {}, hash {})",
                args.out.display(),
                exported.bytes as f64 / 1e6,
                exported.step,
                exported.short_hash
            );
            Ok(())
        }
        Command::Sample(args) => sample_command(args),
        Command::Eval(args) => eval_command(args),
        Command::Bench(args) => {
            let choice = args.device.choice();
            choice.check_available()?;
            let options = bench::BenchOptions {
                model: model_config(&args.config)?,
                train_batch: args.batch,
                train_steps: args.steps,
                sample_batches: vec![1, 16],
                sample_steps: args.sample_steps,
                warmup_steps: args.warmup,
            };
            let rows = bench::run(&options, &choice.device()?)?;
            print!("{}", bench::table(choice.burn_device_name(), &rows));
            Ok(())
        }
    }
}

fn model_config(name: &str) -> Result<UNetConfig> {
    let config = match name {
        "default" => UNetConfig::new(),
        "tiny" => UNetConfig::tiny(),
        path => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading model config {path}"))?;
            serde_json::from_str(&text).with_context(|| format!("parsing model config {path}"))?
        }
    };
    config.validate().map_err(|problem| anyhow::anyhow!("model config {name}: {problem}"))?;
    Ok(config)
}

fn train_command(args: TrainArgs) -> Result<()> {
    let choice = args.device.choice();
    choice.check_available()?;
    let device = choice.device()?;
    let config = if args.resume {
        train::read_run_config(&args.run)?
    } else {
        if args.run.join("checkpoints").exists() {
            bail!(
                "{} already has checkpoints: add --resume to continue it, or pick a new --run",
                args.run.display()
            );
        }
        let model = model_config(&args.config)?;
        let (parent, parent_steps, parent_images) = match &args.init_from {
            Some(path) => {
                let loaded = load_from_file(path, &device)
                    .with_context(|| format!("--init-from {}", path.display()))?;
                if loaded.metadata.model != model {
                    bail!(
                        "--init-from {}: its model config differs from --config {}",
                        path.display(),
                        args.config
                    );
                }
                (
                    Some(loaded.short_hash),
                    loaded.metadata.training.steps,
                    loaded.metadata.training.images_seen,
                )
            }
            None => (None, 0, 0),
        };
        if args.batch_size == 0 || args.checkpoint_every == 0 || args.log_every == 0 {
            bail!("--batch-size, --checkpoint-every and --log-every must be at least 1");
        }
        RunConfig {
            model,
            schedule: ScheduleConfig::default(),
            data: args.data.clone(),
            dataset: dataset_info(&args.data, args.dataset_name.clone(), args.licence.clone()),
            batch_size: args.batch_size,
            learning_rate: args.lr,
            warmup_steps: args.warmup,
            grad_clip: args.grad_clip,
            ema_decay: args.ema_decay,
            seed: args.seed,
            checkpoint_every: args.checkpoint_every,
            log_every: args.log_every,
            parent,
            parent_steps,
            parent_images,
        }
    };
    train::write_run_config(&args.run, &config)?;
    let cache = args.run.join(format!("dataset-{}.cache", config.model.image_size));
    let dataset =
        ImageDataset::load(&args.data, config.model.image_size, &cache, config.batch_size)?;
    let report = dataset.report();
    println!(
        "{} images ({} training, {} held out){}{}",
        report.loaded,
        dataset.len_train(),
        dataset.len_heldout(),
        if report.from_cache { ", from cache" } else { "" },
        if report.skipped > 0 {
            format!("; skipped {} unreadable: {}", report.skipped, report.first_skipped.join(", "))
        } else {
            String::new()
        }
    );
    let init_from = match (&args.init_from, args.resume) {
        (Some(path), false) => Some(load_from_file(path, &device)?.model),
        _ => None,
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step and saving (Ctrl-C again to quit at once)");
    })
    .context("installing the Ctrl-C handler")?;
    let session = Session {
        run: &args.run,
        device,
        dataset: &dataset,
        stop: StopRule {
            max_steps: args.steps,
            max_duration: args.max_minutes.map(|m| Duration::from_secs_f64(m.max(0.0) * 60.0)),
        },
        interrupted,
        resume: args.resume,
        init_from,
        progress_bar: std::io::stderr().is_terminal(),
    };
    let outcome = train::run(&config, session)?;
    println!(
        "stopped at step {} ({}); last loss {}; checkpoint, samples and loss.png in {}",
        outcome.step,
        outcome.reason,
        outcome.last_loss.map_or("-".into(), |l| format!("{l:.5}")),
        args.run.display()
    );
    Ok(())
}

/// Name and licence of a training folder, from its `LICENSE.md` when present.
fn dataset_info(data: &Path, name: Option<String>, licence: Option<String>) -> DatasetInfo {
    let folder_name = data.file_name().and_then(|n| n.to_str()).unwrap_or("images").to_string();
    let licence = licence.unwrap_or_else(|| {
        std::fs::read_to_string(data.join("LICENSE.md"))
            .ok()
            .and_then(|text| {
                // A "Licence:" summary line if there is one, else the first line of prose.
                let lines = || text.lines().map(str::trim);
                lines()
                    .find(|line| line.starts_with("Licence:") || line.starts_with("License:"))
                    .or_else(|| lines().find(|line| !line.is_empty() && !line.starts_with('#')))
                    .map(|line| line.chars().take(400).collect())
            })
            .unwrap_or_else(|| "unknown: user-supplied images without a LICENSE.md".to_string())
    });
    DatasetInfo { name: name.unwrap_or(folder_name), licence }
}

fn sample_command(args: SampleArgs) -> Result<()> {
    let choice = args.device.choice();
    choice.check_available()?;
    let device = choice.device()?;
    let timesteps = ddpm_avatars::weights::read_metadata(
        &std::fs::read(&args.weights)
            .with_context(|| format!("reading {}", args.weights.display()))?,
    )?
    .schedule
    .timesteps;
    let sampler = match args.sampler {
        SamplerArg::Ddpm => SamplerConfig {
            steps: args.steps.unwrap_or(timesteps),
            ..SamplerConfig::ddpm(timesteps)
        },
        SamplerArg::Ddim => SamplerConfig {
            kind: SamplerKind::Ddim { eta: args.eta },
            steps: args.steps.unwrap_or(50),
            clip_x0: true,
        },
    };
    let request = sample::SampleRequest {
        seed: args.seed,
        count: args.count,
        sampler: SamplerConfig { clip_x0: !args.no_clip, ..sampler },
        scale: args.scale,
        trajectory_at: if args.trajectory { args.trajectory_at } else { Vec::new() },
    };
    for path in sample::sample(&args.weights, &args.out, &request, &device)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn eval_command(args: EvalArgs) -> Result<()> {
    let choice = args.device.choice();
    choice.check_available()?;
    let device = choice.device()?;
    let loaded = load_from_file(&args.weights, &device)
        .with_context(|| format!("loading {}", args.weights.display()))?;
    let size = loaded.metadata.image.size;
    let cache = args.cache.unwrap_or_else(|| {
        let key = ddpm_avatars::weights::short_hash(args.data.display().to_string().as_bytes());
        std::env::temp_dir().join(format!("ddpm-avatars-eval-{key}-{size}.cache"))
    });
    let dataset = ImageDataset::load(&args.data, size, &cache, 1)?;
    let heldout = dataset.heldout();
    let result =
        eval::eps_mse(&loaded.model, loaded.metadata.schedule, &heldout, size, args.batch, &device);
    println!(
        "held-out eps-MSE {:.6} over {} images (t and eps fixed by seed {:#x}; weights {})",
        result.eps_mse,
        result.images,
        eval::EVAL_SEED,
        loaded.short_hash
    );
    Ok(())
}
