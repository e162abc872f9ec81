//! `bench`: training throughput and sampling latency of the default U-Net on one device,
//! printed as a table. This is where speed is measured (never in tests).

use std::time::Instant;

use anyhow::Result;
use burn::tensor::Device;
use ddpm_avatars::noise::{NoiseStream, standard_normal};
use ddpm_avatars::weights::DatasetInfo;
use ddpm_avatars::{NoiseSchedule, Sampler, SamplerConfig, ScheduleConfig, UNetConfig};

use crate::data::ImageDataset;
use crate::device::DeviceChoice;
use crate::precision::Precision;
use crate::train::{RunConfig, StepContext, optimizer, train_step};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The model (the default config unless asked otherwise).
    pub model: UNetConfig,
    /// Training batch size.
    pub train_batch: usize,
    /// Timed training steps (after warm-up).
    pub train_steps: usize,
    /// Sampling batch sizes.
    pub sample_batches: Vec<usize>,
    /// Timed sampling steps per batch size (after warm-up).
    pub sample_steps: usize,
    /// Untimed steps first (autotune, shader compilation, allocation).
    pub warmup_steps: usize,
    /// The training steps' arithmetic.
    pub precision: Precision,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct BenchRow {
    /// What was measured.
    pub what: String,
    /// The figure.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
}

/// Runs the benchmark on `device` and returns the rows.
pub fn run(options: &BenchOptions, device: &Device) -> Result<Vec<BenchRow>> {
    let mut rows = Vec::new();
    let size = options.model.image_size;
    let pixels = (standard_normal(1, NoiseStream::Aux(9), 64 * 3 * size * size))
        .iter()
        .map(|v| ((v * 60.0) + 128.0).clamp(0.0, 255.0) as u8)
        .collect();
    let dataset = ImageDataset::from_packed(size, pixels)?;
    let config = RunConfig {
        model: options.model.clone(),
        schedule: ScheduleConfig::default(),
        data: "synthetic".into(),
        dataset: DatasetInfo { name: "synthetic".into(), licence: "none".into() },
        batch_size: options.train_batch,
        learning_rate: 2e-4,
        warmup_steps: 100,
        grad_clip: 1.0,
        ema_decay: 0.9999,
        seed: 0,
        checkpoint_every: u64::MAX,
        log_every: u64::MAX,
        parent: None,
        parent_steps: 0,
        parent_images: 0,
        parent_cpu_seconds: 0.0,
        lineage: Vec::new(),
        precision: options.precision,
    };
    let train_device = device.clone().autodiff();
    let schedule = NoiseSchedule::new(config.schedule);
    let mut model = config.model.init(&train_device);
    let mut optim = optimizer();
    let mut timed = None;
    for step in 0..(options.warmup_steps + options.train_steps) as u64 {
        if step == options.warmup_steps as u64 {
            timed = Some(Instant::now());
        }
        // train_step reads the loss back every step, so each step is fully synchronised.
        let context = StepContext {
            config: &config,
            schedule: &schedule,
            dataset: &dataset,
            device: &train_device,
        };
        model = train_step(model, &mut optim, context, step)?.0;
    }
    if let Some(started) = timed {
        let images = (options.train_steps * options.train_batch) as f64;
        rows.push(BenchRow {
            what: format!("training, batch {}, {:?}", options.train_batch, options.precision)
                .to_lowercase(),
            value: images / started.elapsed().as_secs_f64(),
            unit: "img/s",
        });
    }

    let model = options.model.init(device);
    let image = [options.model.image_channels, size, size];
    for &batch in &options.sample_batches {
        let total = options.warmup_steps + options.sample_steps;
        let config = SamplerConfig::ddim(total.min(schedule.timesteps()));
        let mut sampler = Sampler::new(&schedule, config, 0, batch, image, device)?;
        let mut started = Instant::now();
        for step in 0..total {
            if step == options.warmup_steps {
                device.sync().map_err(|e| anyhow::anyhow!("{e:?}"))?;
                started = Instant::now();
            }
            sampler.step(&model);
        }
        device.sync().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        rows.push(BenchRow {
            what: format!("sampling, batch {batch}"),
            value: started.elapsed().as_secs_f64() * 1000.0 / options.sample_steps.max(1) as f64,
            unit: "ms/step",
        });
    }
    Ok(rows)
}

/// [`run`] on `choice`'s device, with a panic inside burn or a driver (e.g. no adapter behind
/// a Vulkan loader) turned into an error, so `bench --all` can go on with the other backends.
/// A GPU is first compared with the CPU ([`DeviceChoice::check_agrees_with_cpu`]); one that
/// disagrees is still measured, with a warning on stderr, since its figures say what a fix
/// would be worth.
pub fn run_guarded(options: &BenchOptions, choice: DeviceChoice) -> Result<Vec<BenchRow>> {
    let measure = || {
        let device = choice.device()?;
        if choice != DeviceChoice::Cpu {
            let schedule = ScheduleConfig::default();
            match choice.check_agrees_with_cpu(&options.model, schedule, &device) {
                Ok(largest) => eprintln!(
                    "--device {}: agrees with the CPU (largest difference {largest:.2e})",
                    choice.name()
                ),
                Err(error) => eprintln!("warning: {error:#}"),
            }
        }
        run(options, &device)
    };
    std::panic::catch_unwind(measure).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into());
        Err(anyhow::anyhow!("{message}"))
    })
}

/// The measurements of each device (`(name, rows)`, all from the same [`BenchOptions`]) as
/// one Markdown table, a column per device.
pub fn table(columns: &[(String, Vec<BenchRow>)]) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    let mut text =
        format!("| measurement | {} |\n|---|{}\n", names.join(" | "), "---|".repeat(names.len()));
    let Some((_, first)) = columns.first() else { return text };
    for (index, row) in first.iter().enumerate() {
        let values: Vec<String> = columns
            .iter()
            .map(|(_, rows)| rows.get(index).map_or("-".into(), |r| format!("{:.2}", r.value)))
            .collect();
        text.push_str(&format!("| {} ({}) | {} |\n", row.what, row.unit, values.join(" | ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(what: &str, value: f64, unit: &'static str) -> BenchRow {
        BenchRow { what: what.into(), value, unit }
    }

    #[test]
    fn one_markdown_table_with_a_column_per_device() {
        let cpu = vec![
            row("training, batch 8", 1.234, "img/s"),
            row("sampling, batch 1", 500.0, "ms/step"),
        ];
        let gpu = vec![row("training, batch 8", 900.0, "img/s")];
        let text = table(&[("cpu".into(), cpu), ("vulkan".into(), gpu)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "| measurement | cpu | vulkan |");
        assert_eq!(lines[1], "|---|---|---|");
        assert_eq!(lines[2], "| training, batch 8 (img/s) | 1.23 | 900.00 |");
        assert_eq!(
            lines[3], "| sampling, batch 1 (ms/step) | 500.00 | - |",
            "a missing figure is a dash"
        );
        assert_eq!(lines.len(), 4);
    }
}
