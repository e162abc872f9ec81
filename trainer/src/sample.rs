//! `sample`: avatars from a weights file as a grid PNG, optionally with the trajectory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use ddpm_avatars::image::{
    BatchShape, Rgba, batch_to_grid, encode_png, square_columns, upscale_nearest,
};
use ddpm_avatars::weights::{LoadedWeights, fingerprint_probe, load_from_file};
use ddpm_avatars::{NoiseSchedule, Sampler, SamplerConfig};

use crate::report::write_atomically;

/// What `sample` makes.
#[derive(Debug, Clone)]
pub struct SampleRequest {
    /// First seed (image `i` uses `seed + i`, as on the page).
    pub seed: u64,
    /// Number of avatars.
    pub count: usize,
    /// Sampler, steps, clipping.
    pub sampler: SamplerConfig,
    /// Integer upscale of the written PNGs.
    pub scale: usize,
    /// Timesteps at which to keep frames for a trajectory strip (empty: none).
    pub trajectory_at: Vec<usize>,
}

/// Loads `weights`, checks its fingerprint, samples, and writes `out` (and
/// `out`-trajectory.png when frames were asked for). Returns the written paths.
pub fn sample(
    weights: &Path,
    out: &Path,
    request: &SampleRequest,
    device: &Device,
) -> Result<Vec<PathBuf>> {
    let loaded = load_from_file(weights, device)
        .with_context(|| format!("loading {}", weights.display()))?;
    check_fingerprint(&loaded, device)?;
    let meta = &loaded.metadata;
    let schedule = NoiseSchedule::new(meta.schedule);
    let image = [meta.image.channels, meta.image.size, meta.image.size];
    let mut sampler =
        Sampler::new(&schedule, request.sampler, request.seed, request.count, image, device)?;
    let mut frames: Vec<Tensor<4>> = Vec::new();
    if request.trajectory_at.iter().any(|&t| t >= schedule.timesteps()) {
        frames.push(sampler.x().clone());
    }
    while let Some(step) = sampler.step(&loaded.model) {
        if request.trajectory_at.contains(&step.timestep) {
            frames.push(step.x);
        }
    }
    let shape =
        BatchShape { batch: request.count, height: meta.image.size, width: meta.image.size };
    let grid = batch_to_grid(&read(sampler.x())?, shape, square_columns(request.count), 2)?;
    write_png(out, &grid, request.scale)?;
    let mut written = vec![out.to_path_buf()];
    if !request.trajectory_at.is_empty() {
        if frames.is_empty() {
            bail!(
                "none of the trajectory timesteps {:?} is visited by this sampler",
                request.trajectory_at
            );
        }
        // Rows: avatars; columns: frames from noisy to clean.
        let frame_count = frames.len();
        let mut values = Vec::new();
        let frames: Vec<Vec<f32>> = frames.iter().map(read).collect::<Result<_>>()?;
        let per_image = shape.per_image();
        for avatar in 0..request.count {
            for frame in &frames {
                values.extend_from_slice(&frame[avatar * per_image..(avatar + 1) * per_image]);
            }
        }
        let strip_shape = BatchShape { batch: request.count * frame_count, ..shape };
        let strip = batch_to_grid(&values, strip_shape, frame_count, 2)?;
        let path = trajectory_path(out);
        write_png(&path, &strip, request.scale)?;
        written.push(path);
    }
    Ok(written)
}

/// Recomputes the file's golden fingerprint; a mismatch means this build computes something
/// else than the trainer that wrote the file.
pub fn check_fingerprint(loaded: &LoadedWeights, device: &Device) -> Result<()> {
    let Some(recorded) = &loaded.metadata.fingerprint else {
        eprintln!("note: the weights file has no fingerprint to check");
        return Ok(());
    };
    let fresh = read(&fingerprint_probe(&loaded.model, &loaded.metadata, device))?;
    match recorded.check(&fresh) {
        Ok(_) => Ok(()),
        Err(mismatch) => bail!(
            "the weights' golden fingerprint does not match ({mismatch}): this build computes \
             something different from the trainer that exported the file"
        ),
    }
}

fn read<const D: usize>(tensor: &Tensor<D>) -> Result<Vec<f32>> {
    tensor.clone().try_into_vec_as().map_err(|e| anyhow::anyhow!("reading from the device: {e:?}"))
}

fn write_png(path: &Path, picture: &Rgba, scale: usize) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write_atomically(path, &encode_png(&upscale_nearest(picture, scale))?)
}

/// `grid.png` -> `grid-trajectory.png`.
pub fn trajectory_path(out: &Path) -> PathBuf {
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("samples");
    out.with_file_name(format!("{stem}-trajectory.png"))
}
