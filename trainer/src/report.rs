//! What a run leaves for people to look at: the loss history (`metrics.csv`), its curve
//! (`loss.png`), and sample grids from the EMA model (`samples/step-N.png`).

use std::path::Path;

use anyhow::{Context, Result};
use burn::module::Module;
use ddpm_avatars::image::{BatchShape, batch_to_grid, encode_png, square_columns, upscale_nearest};
use ddpm_avatars::{NoiseSchedule, Sampler, SamplerConfig, ScheduleConfig, UNet, UNetConfig};
use plotters::prelude::*;

/// Seed of the sample grids, fixed so grids of one run are comparable step to step.
pub const GRID_SEED: u64 = 0;
/// Avatars per sample grid.
pub const GRID_COUNT: usize = 16;
/// DDIM steps for the grids (fast, and close to DDPM 1000 for a trained model).
pub const GRID_STEPS: usize = 50;

/// Writes `bytes` to a temporary sibling and renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    std::fs::write(&temporary, bytes).with_context(|| format!("writing {}", path.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))
}

/// Loss per step, kept across resumes.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `(step, loss, learning rate)`.
    pub rows: Vec<(u64, f32, f64)>,
}

impl Metrics {
    /// Reads `RUN/metrics.csv`, keeping the steps up to `step` (later ones are redone).
    pub fn load(run: &Path, step: u64) -> Result<Self> {
        let path = run.join("metrics.csv");
        let Ok(text) = std::fs::read_to_string(&path) else { return Ok(Self::default()) };
        let rows = text
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut fields = line.split(',');
                let step = fields.next()?.parse().ok()?;
                let loss = fields.next()?.parse().ok()?;
                let rate = fields.next()?.parse().ok()?;
                Some((step, loss, rate))
            })
            .filter(|row: &(u64, f32, f64)| row.0 <= step)
            .collect();
        Ok(Self { rows })
    }

    /// Records one step.
    pub fn push(&mut self, step: u64, loss: f32, learning_rate: f64) {
        self.rows.push((step, loss, learning_rate));
    }

    /// Writes `RUN/metrics.csv`.
    pub fn save(&self, run: &Path) -> Result<()> {
        let mut text = String::from("step,loss,learning_rate\n");
        for (step, loss, rate) in &self.rows {
            text.push_str(&format!("{step},{loss},{rate}\n"));
        }
        write_atomically(&run.join("metrics.csv"), text.as_bytes())
    }

    /// Exponentially smoothed loss, as shown on the progress bar (see [`LossSmoother`]).
    pub fn smoothed(&self) -> Vec<(u64, f32)> {
        let mut smoother = LossSmoother::default();
        self.rows.iter().map(|&(step, loss, _)| (step, smoother.push(loss))).collect()
    }
}

/// An exponential moving average of the loss (0.98 per step) with Adam's bias correction,
/// so the first steps are not dragged towards the starting value.
#[derive(Debug, Default, Clone)]
pub struct LossSmoother {
    average: f64,
    steps: i32,
}

impl LossSmoother {
    /// Adds one loss value and returns the smoothed value.
    pub fn push(&mut self, loss: f32) -> f32 {
        const DECAY: f64 = 0.98;
        self.average = DECAY * self.average + (1.0 - DECAY) * f64::from(loss);
        self.steps = self.steps.saturating_add(1);
        (self.average / (1.0 - DECAY.powi(self.steps))) as f32
    }
}

/// Samples [`GRID_COUNT`] avatars from `model` with DDIM [`GRID_STEPS`] and writes a grid PNG
/// (2x upscaled, crisp).
pub fn sample_grid(
    model: &UNet,
    model_config: &UNetConfig,
    schedule: ScheduleConfig,
    path: &Path,
) -> Result<()> {
    let device = model.devices().first().cloned().context("the model has no device")?;
    let schedule = NoiseSchedule::new(schedule);
    let size = model_config.image_size;
    let config = [model_config.image_channels, size, size];
    let mut sampler = Sampler::new(
        &schedule,
        SamplerConfig::ddim(GRID_STEPS),
        GRID_SEED,
        GRID_COUNT,
        config,
        &device,
    )?;
    while sampler.step(model).is_some() {}
    let values: Vec<f32> =
        sampler.x().clone().try_into_vec_as().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let shape = BatchShape { batch: GRID_COUNT, height: config[1], width: config[2] };
    let grid = upscale_nearest(&batch_to_grid(&values, shape, square_columns(GRID_COUNT), 1)?, 2);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write_atomically(path, &encode_png(&grid)?)
}

/// Draws the smoothed loss on a log scale to `path` (PNG). Axis labels need a system font
/// (DejaVu Sans, Liberation Sans); without one the curve is drawn unlabelled.
pub fn loss_curve(metrics: &Metrics, path: &Path) -> Result<()> {
    let points = metrics.smoothed();
    if points.len() < 2 {
        return Ok(());
    }
    let temporary = path.with_extension("partial.png");
    {
        let root = BitMapBackend::new(&temporary, (800, 450)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let last_step = points.last().map_or(1, |p| p.0).max(2);
        let raw: Vec<(u64, f32)> =
            metrics.rows.iter().map(|&(step, loss, _)| (step, loss)).collect();
        let low = raw.iter().map(|p| p.1).fold(f32::INFINITY, f32::min).max(1e-6);
        let high = raw.iter().map(|p| p.1).fold(0.0, f32::max).max(low * 1.01);
        let mut chart = ChartBuilder::on(&root)
            .margin(20)
            .x_label_area_size(if fonts_available() { 40 } else { 0 })
            .y_label_area_size(if fonts_available() { 60 } else { 0 })
            .build_cartesian_2d(points[0].0..last_step, (low..high).log_scale())
            .map_err(plot_error)?;
        if fonts_available() {
            chart
                .configure_mesh()
                .x_desc("step")
                .y_desc("loss: per step (grey), smoothed (blue)")
                .y_labels(12)
                .y_label_formatter(&|v| format!("{v:.3}"))
                .draw()
                .map_err(plot_error)?;
        }
        let grey = RGBColor(190, 190, 190);
        chart.draw_series(LineSeries::new(raw.iter().copied(), &grey)).map_err(plot_error)?;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), BLUE.stroke_width(2)))
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))
}

fn plot_error<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the loss curve: {error:?}")
}

/// Registers a system font for plot labels once; false when none is installed.
fn fonts_available() -> bool {
    static FONT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FONT.get_or_init(|| {
        let candidates = [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/System/Library/Fonts/Supplemental/Arial.ttf",
            "C:\\Windows\\Fonts\\arial.ttf",
        ];
        candidates.iter().find_map(|path| std::fs::read(path).ok()).is_some_and(|bytes| {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        })
    })
}
