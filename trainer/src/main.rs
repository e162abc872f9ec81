//! `trainer`: build the avatar dataset, train the DDPM U-Net, export, sample, evaluate and
//! benchmark. `trainer <command> --help` documents every flag (see `cli`).

mod cli;
mod continuation;

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Parser;
use ddpm_avatars::weights::{DatasetInfo, LoadedWeights, load_from_file};
use ddpm_avatars::{SamplerConfig, SamplerKind, ScheduleConfig, UNetConfig};
use trainer::data::ImageDataset;
use trainer::device::DeviceChoice;
use trainer::precision::Precision;
use trainer::train::{RunConfig, Session, StopRule};
use trainer::{avatars, bench, eval, export, sample, train};

use crate::cli::{
    BenchArgs, Cli, Command, DataCommand, EvalArgs, ExportArgs, SampleArgs, SamplerArg, TrainArgs,
};

fn main() {
    let cli = Cli::parse();
    select_default_device(&cli.command);
    if let Err(error) = run(cli.command) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// Makes burn's `Device::default()` the device the command uses (see
/// [`DeviceChoice::burn_device_name`]), unless the user set `BURN_DEVICE` themselves.
#[allow(unsafe_code)]
fn select_default_device(command: &Command) {
    let Some(choice) = command.device_choice() else { return };
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::set_var("BURN_DEVICE", choice.burn_device_name()) };
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Data(DataCommand::Pack { data, size, out }) => {
            let dataset = trainer::data::ImageDataset::load(&data, size, &out, 1)?;
            let report = dataset.report();
            if !out.is_file() {
                bail!("could not write {}", out.display());
            }
            println!(
                "{}: {} images of {size}x{size} ({} held out){}",
                out.display(),
                report.loaded,
                dataset.len_heldout(),
                if report.from_cache { ", already up to date" } else { "" }
            );
            Ok(())
        }
        Command::Data(DataCommand::Avatars { count, out }) => {
            println!("{}", avatars::build_avatar_dataset(count, &out)?);
            Ok(())
        }
        Command::Train(args) => train_command(args),
        Command::Continue(args) => continuation::continue_command(args),
        Command::Export(args) => export_command(args),
        Command::Sample(args) => sample_command(args),
        Command::Eval(args) => eval_command(args),
        Command::Bench(args) => bench_command(args),
    }
}

fn train_command(args: TrainArgs) -> Result<()> {
    let choice = args.device.choice();
    choice.check_available()?;
    let device = choice.device()?;
    let (config, parent) = if args.resume {
        (train::read_run_config(&args.run)?, None)
    } else {
        start_run(&args, &device)?
    };
    if config.precision == Precision::Bf16
        && matches!(choice, DeviceChoice::Vulkan | DeviceChoice::Wgpu)
    {
        bail!(
            "--precision bf16 needs --device cuda or cpu: burn 0.22's wgpu/Vulkan backend has no \
             bf16 (use --precision f32 there)"
        );
    }
    if choice != DeviceChoice::Cpu {
        let largest = choice.check_agrees_with_cpu(&config.model, config.schedule, &device)?;
        println!(
            "--device {} agrees with the CPU (largest difference {largest:.2e})",
            choice.name()
        );
    }
    train::write_run_config(&args.run, &config)?;
    let dataset = load_training_images(&args.data, &args.run, &config)?;
    let session = Session {
        run: &args.run,
        device,
        dataset: &dataset,
        stop: StopRule {
            max_steps: args.steps,
            max_duration: args.max_minutes.map(|m| Duration::from_secs_f64(m.max(0.0) * 60.0)),
        },
        interrupted: stop_on_ctrl_c()?,
        resume: args.resume,
        init_from: parent.map(|parent| parent.model),
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

/// The settings of a new run, and its `--init-from` parent, loaded and checked once here.
fn start_run(args: &TrainArgs, device: &Device) -> Result<(RunConfig, Option<LoadedWeights>)> {
    if args.run.join("checkpoints").exists() {
        bail!(
            "{} already has checkpoints: add --resume to continue it, or pick a new --run",
            args.run.display()
        );
    }
    if args.batch_size == 0 || args.checkpoint_every == 0 || args.log_every == 0 {
        bail!("--batch-size, --checkpoint-every and --log-every must be at least 1");
    }
    let model = model_config(&args.config)?;
    let parent = match &args.init_from {
        Some(path) => Some(load_parent(path, &model, &args.config, device)?),
        None => None,
    };
    let lineage = parent.as_ref().map(|parent| &parent.metadata.training);
    let config = RunConfig {
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
        parent: parent.as_ref().map(|parent| parent.short_hash.clone()),
        parent_steps: lineage.map_or(0, |training| training.steps),
        parent_images: lineage.map_or(0, |training| training.images_seen),
        parent_cpu_seconds: lineage.map_or(0.0, |training| training.cpu_hours * 3600.0),
        lineage: parent.as_ref().map_or_else(Vec::new, |parent| {
            let mut hashes = parent.metadata.training.parents.clone();
            // Files from before lineages were recorded name only their direct parent.
            if hashes.is_empty() {
                hashes.extend(parent.metadata.training.parent.clone());
            }
            hashes.push(parent.short_hash.clone());
            hashes
        }),
        precision: args.precision,
    };
    Ok((config, parent))
}

/// Loads and validates the `--init-from` weights; their model must be the one `--config` names.
fn load_parent(
    path: &Path,
    model: &UNetConfig,
    config_name: &str,
    device: &Device,
) -> Result<LoadedWeights> {
    let parent =
        load_from_file(path, device).with_context(|| format!("--init-from {}", path.display()))?;
    if &parent.metadata.model != model {
        bail!(
            "--init-from {}: its model config differs from --config {config_name}",
            path.display()
        );
    }
    Ok(parent)
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

/// The run's training images, decoded once into `RUN/dataset-SIZE.cache`; prints what was found.
fn load_training_images(data: &Path, run: &Path, config: &RunConfig) -> Result<ImageDataset> {
    let size = config.model.image_size;
    let cache = run.join(format!("dataset-{size}.cache"));
    let dataset = ImageDataset::load(data, size, &cache, config.batch_size)?;
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
    Ok(dataset)
}

/// A flag that the first Ctrl-C sets (training stops after the step and saves); a second
/// Ctrl-C quits at once.
fn stop_on_ctrl_c() -> Result<Arc<AtomicBool>> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step and saving (Ctrl-C again to quit at once)");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(interrupted)
}

fn export_command(args: ExportArgs) -> Result<()> {
    let exported =
        export::export(&args.run, &args.out, args.dtype.into(), &DeviceChoice::Cpu.device()?)?;
    println!(
        "wrote {} ({:.1} MB, step {}, EMA decay {:.6} (target {}), hash {})",
        args.out.display(),
        exported.bytes as f64 / 1e6,
        exported.step,
        exported.ema_decay,
        exported.target_ema_decay,
        exported.short_hash
    );
    Ok(())
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
            kind: SamplerKind::Ddpm { variance: args.variance.into() },
            steps: args.steps.unwrap_or(timesteps),
            clip_x0: true,
        },
        SamplerArg::Ddim => SamplerConfig {
            kind: SamplerKind::Ddim { eta: args.eta, spacing: args.spacing.into() },
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

fn bench_command(args: BenchArgs) -> Result<()> {
    let options = bench::BenchOptions {
        model: model_config(&args.config)?,
        train_batch: args.batch,
        train_steps: args.steps,
        sample_batches: vec![1, 16],
        sample_steps: args.sample_steps,
        warmup_steps: args.warmup,
        precision: args.precision,
    };
    let choices = if args.all { DeviceChoice::in_this_build() } else { vec![args.device.choice()] };
    let mut columns = Vec::new();
    for choice in choices {
        // The column is headed by the `--device` value that measures it alone.
        let name = choice.name();
        let rows = choice.check_available().and_then(|()| bench::run_guarded(&options, choice));
        match rows {
            Ok(rows) => columns.push((name, rows)),
            // One backend failing (e.g. a Vulkan loader without a GPU driver) leaves the others.
            Err(error) if args.all => eprintln!("--device {name}: not measured: {error:#}"),
            Err(error) => return Err(error),
        }
    }
    print!("{}", bench::table(&columns));
    Ok(())
}

/// The model `--config` names: `default`, `small`, `tiny` or a JSON file holding a `UNetConfig`.
fn model_config(name: &str) -> Result<UNetConfig> {
    let config = match name {
        "default" => UNetConfig::new(),
        "tiny" => UNetConfig::tiny(),
        "small" => UNetConfig::small(),
        path => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading model config {path}"))?;
            serde_json::from_str(&text).with_context(|| format!("parsing model config {path}"))?
        }
    };
    config.validate().map_err(|problem| anyhow::anyhow!("model config {name}: {problem}"))?;
    Ok(config)
}
