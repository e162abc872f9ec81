//! The browser adapter (wasm32 only): a [`Generator`] that JavaScript drives one reverse
//! step at a time. All logic lives in the rest of the crate; this file only converts between
//! JS values and the crate's types, and never unwraps anything that comes from the page, the
//! network or the GPU.

use burn::tensor::{Device, Tensor, TensorData};
use js_sys::{Float32Array, Float64Array, Object, Reflect, Uint8ClampedArray};
use wasm_bindgen::prelude::*;

use crate::UNet;
use crate::image::{
    BatchShape, Rgba, batch_to_grid, packed_to_grid, rgba_to_values, square_columns,
};
use crate::noise::{NoiseStream, batch_standard_normal, slerp};
use crate::readback::{Readback, pack_pixels};
use crate::sampler::{DdpmVariance, Sampler, SamplerConfig, SamplerKind, TimestepSpacing};
use crate::schedule::{BetaSchedule, NoiseSchedule, ScheduleConfig};
use crate::weights::{WeightsMetadata, fingerprint_probe, load_from_bytes};
use serde::Deserialize;

/// Panics (bugs, not user errors) print a Rust backtrace to the console.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// Background pixels between the images of a grid (www/grid.js has the same `GRID_GAP`).
const GRID_GAP: usize = 2;

/// Largest seed the page accepts: JavaScript numbers are exact up to 2^53.
const MAX_SEED: f64 = 9_007_199_254_740_991.0;

/// One loaded model on one device, and the run in progress.
#[wasm_bindgen]
pub struct Generator {
    model: UNet,
    metadata: WeightsMetadata,
    schedule: NoiseSchedule,
    short_hash: String,
    device: Device,
    backend: String,
    sampler: Option<Sampler>,
}

#[wasm_bindgen]
impl Generator {
    /// Validates `weights` (the bytes of a `.safetensors` file) and builds the model on
    /// WebGPU when `use_webgpu` is set and an adapter can be had, else on the CPU.
    pub async fn create(weights: Vec<u8>, use_webgpu: bool) -> Result<Generator, JsError> {
        let (device, backend) = pick_device(use_webgpu).await;
        let loaded =
            load_from_bytes(&weights, &device).map_err(|e| JsError::new(&e.to_string()))?;
        Ok(Generator {
            schedule: NoiseSchedule::new(loaded.metadata.schedule),
            model: loaded.model,
            metadata: loaded.metadata,
            short_hash: loaded.short_hash,
            device,
            backend,
            sampler: None,
        })
    }

    /// `"webgpu-f32"` or `"cpu"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// First 12 hex digits of the weights' SHA-256 (carried by share links).
    #[wasm_bindgen(getter, js_name = weightsHash)]
    pub fn weights_hash(&self) -> String {
        self.short_hash.clone()
    }

    /// The weights file's metadata as JSON.
    #[wasm_bindgen(getter, js_name = metadataJson)]
    pub fn metadata_json(&self) -> Result<String, JsError> {
        serde_json::to_string(&self.metadata).map_err(|e| JsError::new(&e.to_string()))
    }

    /// Number of diffusion steps `T`.
    #[wasm_bindgen(getter)]
    pub fn timesteps(&self) -> usize {
        self.schedule.timesteps()
    }

    /// Image side in pixels.
    #[wasm_bindgen(getter, js_name = imageSize)]
    pub fn image_size(&self) -> usize {
        self.metadata.image.size
    }

    /// Recomputes the golden fingerprint on this device and compares it with the file's,
    /// with the one tolerance the trainer uses too. Resolves to `null` when the file has no
    /// fingerprint, to `""` when it matches, and to a message naming the mismatch otherwise.
    #[wasm_bindgen(js_name = checkFingerprint)]
    pub async fn check_fingerprint(&self) -> Result<Option<String>, JsError> {
        let Some(recorded) = self.metadata.fingerprint.clone() else { return Ok(None) };
        let probe = fingerprint_probe(&self.model, &self.metadata, &self.device);
        let values = read(probe).await?;
        Ok(Some(recorded.check(&values).err().map_or_else(String::new, |e| e.to_string())))
    }

    /// The same weights with a run of its own (the teaching views each drive one); the
    /// parameters are shared, not copied.
    pub fn twin(&self) -> Generator {
        Generator {
            model: self.model.clone(),
            metadata: self.metadata.clone(),
            schedule: self.schedule.clone(),
            short_hash: self.short_hash.clone(),
            device: self.device.clone(),
            backend: self.backend.clone(),
            sampler: None,
        }
    }

    /// The weights' noise schedule as a table (see [`schedule_table`]).
    #[wasm_bindgen(js_name = scheduleTable)]
    pub fn schedule_table(&self) -> Result<JsValue, JsError> {
        table_object(&self.schedule)
    }

    /// Starts a run described by `options` (see [`RunOptions`]), e.g.
    /// `{seed: 5, batch: 4, sampler: "ddim", steps: 50}`.
    pub fn start(&mut self, options: JsValue) -> Result<(), JsError> {
        let options = RunOptions::from_js(&options)?;
        self.sampler = Some(self.new_sampler(&options, None)?);
        Ok(())
    }

    /// Starts a run from given images instead of `x_T`: `x` holds one or more planar
    /// `[3, size, size]` images at the noise level of step `t` (1 ..= T, the paper's
    /// numbering: `x_t`), e.g. a real image noised with the forward process, or a frame of an
    /// earlier run. The run then visits `t - 1 .. 0` (every step for DDPM, the DDIM
    /// subsequence below `t` otherwise), drawing fresh noise from `options.seed`; `batch` is
    /// taken from `x`.
    #[wasm_bindgen(js_name = startFrom)]
    pub fn start_from(&mut self, x: Vec<f32>, t: usize, options: JsValue) -> Result<(), JsError> {
        let per_image = self.per_image();
        if x.is_empty() || !x.len().is_multiple_of(per_image) {
            return Err(JsError::new(&format!(
                "startFrom needs whole images of {per_image} values ({0} x {1} x {1}), got {2}",
                self.metadata.image.channels,
                self.metadata.image.size,
                x.len()
            )));
        }
        let timesteps = self.schedule.timesteps();
        if t == 0 || t > timesteps {
            return Err(JsError::new(&format!(
                "startFrom needs t between 1 and {timesteps} (x_0 has no noise to remove), got {t}"
            )));
        }
        if let Some(bad) = x.iter().find(|v| !v.is_finite()) {
            return Err(JsError::new(&format!("startFrom got a non-finite value {bad}")));
        }
        let batch = x.len() / per_image;
        let run = self.new_sampler(&RunOptions::from_js(&options)?, Some(batch))?;
        let size = self.metadata.image.size;
        let shape = [batch, self.metadata.image.channels, size, size];
        let x = Tensor::from_data(TensorData::new(x, shape), &self.device);
        let run = run.continue_from(t - 1, x).map_err(|e| JsError::new(&e.to_string()))?;
        self.sampler = Some(run);
        Ok(())
    }

    /// Takes one reverse step and returns `{t, level, step, total, done}` (paper-numbered `t`,
    /// see `set_counters`) plus what `options` (see [`StepOptions`]) asks for: with `draw`
    /// `{width, height, rgba}` (the grid of the new `x_t`), with `x0` also `x0` (the grid of
    /// the predicted clean images), with `raw` also `x` (the new `x_t` itself, planar f32,
    /// the whole batch), and with `focus: i` also `focus: {index, xt, eps, x0, noise, next}`:
    /// for image `i`, the step's input `x_t`, the model's predicted noise, the predicted
    /// `x_0`, the fresh noise `sigma_t z` added and the result, as planar f32 values.
    /// Everything asked for comes back in one read from the device ([`Readback`]), pictures
    /// as bytes packed on the device; reading waits for the GPU, so a step that asks for
    /// nothing runs fastest. With `tiles` the pictures come as the packed pixels of each image
    /// instead of grids (`pixels`, `x0Pixels`): a caller running a batch in parts, one part
    /// per thread, joins the parts' pixels and draws them with [`packed_to_frame`].
    pub async fn step(&mut self, options: JsValue) -> Result<JsValue, JsError> {
        let StepOptions { draw, x0: with_x0, raw, focus, tiles } =
            from_js(&options, "step options")?;
        let sampler =
            self.sampler.as_mut().ok_or_else(|| JsError::new("no run: call start() first"))?;
        let x_t = sampler.x().clone();
        let batch = x_t.dims()[0];
        if let Some(index) = focus.filter(|&i| i >= batch) {
            return Err(JsError::new(&format!("focus {index} is not in a batch of {batch}")));
        }
        let Some(output) = sampler.step(&self.model) else {
            return Err(JsError::new("the run is complete: call start() for a new one"));
        };
        let (step, total) = (sampler.completed_steps(), sampler.total_steps());
        let level = sampler.next_timestep().map_or(0, |t| t + 1);
        let frame = Object::new();
        set_counters(&frame, output.timestep + 1, level, step, total)?;

        let mut readback = Readback::default();
        let values = raw.then(|| readback.push(output.x.clone()));
        // The raw x_t also gives the grid; a grid alone (or tiles) is read as packed bytes.
        let x = match values {
            Some(index) if !tiles => Some(Picture::Values(index)),
            _ => draw.then(|| Picture::Packed(readback.push(pack_pixels(output.x.clone())))),
        };
        let x0 = with_x0
            .then(|| Picture::Packed(readback.push(pack_pixels(output.predicted_x0.clone()))));
        let focused = focus.map(|index| {
            [
                ("xt", x_t),
                ("eps", output.predicted_noise),
                ("x0", output.predicted_x0),
                ("noise", output.added_noise),
                ("next", output.x),
            ]
            .map(|(key, tensor)| (key, readback.push(tensor.slice(index..index + 1))))
        });
        let parts = read_joined(readback).await?;

        let shape = self.batch_shape(batch);
        if draw && let Some(picture) = x {
            picture.put(&frame, ("rgba", "pixels"), &parts, shape, tiles)?;
        }
        if let Some(index) = values {
            set(&frame, "x", &Float32Array::from(parts[index].as_slice()))?;
        }
        if let Some(picture) = x0 {
            picture.put(&frame, ("x0", "x0Pixels"), &parts, shape, tiles)?;
        }
        if let (Some(index), Some(focused)) = (focus, focused) {
            let object = Object::new();
            set(&object, "index", &JsValue::from(index as u32))?;
            for (key, part) in focused {
                set(&object, key, &Float32Array::from(parts[part].as_slice()))?;
            }
            set(&frame, "focus", &object)?;
        }
        Ok(frame.into())
    }

    /// The current `x_t` as a frame (before the first step: the starting noise `x_T`); with
    /// `raw` also its values as `x` (planar f32); with `tiles` the picture as packed pixels
    /// (`pixels`, as [`Generator::step`] gives them). One read from the device either way.
    pub async fn preview(&self, raw: bool, tiles: Option<bool>) -> Result<JsValue, JsError> {
        let tiles = tiles.unwrap_or(false);
        let sampler =
            self.sampler.as_ref().ok_or_else(|| JsError::new("no run: call start() first"))?;
        let batch = sampler.x().dims()[0];
        let mut readback = Readback::default();
        let values = raw.then(|| readback.push(sampler.x().clone()));
        let picture = match values {
            Some(index) if !tiles => Picture::Values(index),
            _ => Picture::Packed(readback.push(pack_pixels(sampler.x().clone()))),
        };
        let parts = read_joined(readback).await?;
        let level = sampler.next_timestep().map_or(0, |t| t + 1);
        let frame = Object::new();
        let counters = (sampler.completed_steps(), sampler.total_steps());
        set_counters(&frame, level, level, counters.0, counters.1)?;
        picture.put(&frame, ("rgba", "pixels"), &parts, self.batch_shape(batch), tiles)?;
        if let Some(index) = values {
            set(&frame, "x", &Float32Array::from(parts[index].as_slice()))?;
        }
        Ok(frame.into())
    }
}

/// Where a batch's picture is among the parts of a joined read-back: planar values (also
/// wanted raw), or pixels packed on the device.
#[derive(Clone, Copy)]
enum Picture {
    Values(usize),
    Packed(usize),
}

impl Picture {
    fn grid(self, parts: &[Vec<f32>], shape: BatchShape) -> Result<Rgba, JsError> {
        let columns = square_columns(shape.batch);
        match self {
            Picture::Values(index) => batch_to_grid(&parts[index], shape, columns, GRID_GAP),
            Picture::Packed(index) => packed_to_grid(&parts[index], shape, columns, GRID_GAP),
        }
        .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Puts the picture on `frame`: as a grid under `keys.0` (with `width` and `height`), or
    /// with `tiles` as the packed pixels themselves under `keys.1`.
    fn put(
        self,
        frame: &Object,
        keys: (&str, &str),
        parts: &[Vec<f32>],
        shape: BatchShape,
        tiles: bool,
    ) -> Result<(), JsError> {
        match self {
            Picture::Packed(index) if tiles => {
                set(frame, keys.1, &Float32Array::from(parts[index].as_slice()))
            }
            _ => set_pixels(frame, keys.0, &self.grid(parts, shape)?),
        }
    }
}

impl Generator {
    /// The shape of a batch of this model's images.
    fn batch_shape(&self, batch: usize) -> BatchShape {
        let size = self.metadata.image.size;
        BatchShape { batch, height: size, width: size }
    }

    /// Values in one image, `channels * size * size`.
    fn per_image(&self) -> usize {
        let size = self.metadata.image.size;
        self.metadata.image.channels * size * size
    }

    /// The sampler `options` describe; `batch` overrides theirs (a run from given images).
    fn new_sampler(&self, options: &RunOptions, batch: Option<usize>) -> Result<Sampler, JsError> {
        let seed = checked_seed(options.seed)?;
        let kind = match options.sampler.as_str() {
            "ddpm" => SamplerKind::Ddpm { variance: options.variance },
            "ddim" => SamplerKind::Ddim { eta: options.eta, spacing: options.spacing },
            other => {
                return Err(JsError::new(&format!("unknown sampler {other:?} (ddpm or ddim)")));
            }
        };
        let steps = options.steps.unwrap_or(self.schedule.timesteps());
        let config = SamplerConfig { kind, steps, clip_x0: options.clip };
        let size = self.metadata.image.size;
        let image = [self.metadata.image.channels, size, size];
        let batch = batch.unwrap_or(options.batch);
        Sampler::new(&self.schedule, config, seed, batch, image, &self.device)
            .map_err(|e| JsError::new(&e.to_string()))
    }
}

/// What a run does: `{seed, batch, sampler, steps, clip, eta, variance, spacing}`. Only
/// `seed` and `sampler` are required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunOptions {
    /// Whole number, 0 ..= 2^53 - 1; image `i` uses `seed + i`.
    seed: f64,
    /// Images in the batch (default 1).
    #[serde(default = "one")]
    batch: usize,
    /// `"ddpm"` or `"ddim"`.
    sampler: String,
    /// Reverse steps (default: all `T`; DDPM always takes all of them).
    #[serde(default)]
    steps: Option<usize>,
    /// Clip the predicted `x_0` to `[-1, 1]` (default: on).
    #[serde(default = "yes")]
    clip: bool,
    /// DDIM's noise scale (default 0: deterministic).
    #[serde(default)]
    eta: f64,
    /// DDPM's `sigma_t^2`: `"posterior"` (beta-tilde, default) or `"beta"`.
    #[serde(default)]
    variance: DdpmVariance,
    /// DDIM's timesteps: `"leading"` (default) or `"trailing"`.
    #[serde(default)]
    spacing: TimestepSpacing,
}

impl RunOptions {
    fn from_js(options: &JsValue) -> Result<Self, JsError> {
        from_js(options, "run options")
    }
}

/// What a step reads back: `{draw, x0, raw, focus}`, all optional (default: nothing).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct StepOptions {
    /// The grid of the new `x_t` as RGBA.
    draw: bool,
    /// The grid of the predicted `x_0` as RGBA.
    x0: bool,
    /// The new `x_t` as planar f32 values.
    raw: bool,
    /// The batch index of the image to take apart.
    focus: Option<usize>,
    /// Pictures as packed pixels per image (`pixels`, `x0Pixels`) instead of grids.
    tiles: bool,
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

/// Reads a plain JS object (`undefined` means all defaults) through its JSON.
fn from_js<T: serde::de::DeserializeOwned>(value: &JsValue, what: &str) -> Result<T, JsError> {
    let json = if value.is_undefined() || value.is_null() {
        "{}".to_string()
    } else {
        js_sys::JSON::stringify(value)
            .ok()
            .and_then(|text| text.as_string())
            .ok_or_else(|| JsError::new(&format!("{what} must be a plain object")))?
    };
    serde_json::from_str(&json).map_err(|e| JsError::new(&format!("{what}: {e}")))
}

/// The tables of a noise schedule, for the page's charts and formulas: `{kind, timesteps,
/// betas, alphas, alphaBars, posteriorVariance}` (Float64Arrays indexed by the 0-based step,
/// so index `t - 1` is the paper's step `t`). `kind` is `"linear"` (Ho et al. 2020: 1e-4 to
/// 0.02) or `"cosine"` (Nichol & Dhariwal 2021).
#[wasm_bindgen(js_name = scheduleTable)]
pub fn schedule_table(kind: &str, timesteps: usize) -> Result<JsValue, JsError> {
    let beta = match kind {
        "linear" => BetaSchedule::linear(),
        "cosine" => BetaSchedule::cosine(),
        other => {
            return Err(JsError::new(&format!("unknown schedule {other:?} (linear or cosine)")));
        }
    };
    let config = ScheduleConfig { beta, timesteps };
    config.validate().map_err(|e| JsError::new(&e))?;
    table_object(&NoiseSchedule::new(config))
}

/// `x_T` for `count` images of `per_image` values, image `i` from seed `seed + i`: exactly
/// the starting noise a run with this seed uses.
#[wasm_bindgen(js_name = initialNoise)]
pub fn initial_noise(seed: f64, count: usize, per_image: usize) -> Result<Float32Array, JsError> {
    let values = batch_standard_normal(checked_seed(seed)?, count, NoiseStream::Initial, per_image);
    Ok(Float32Array::from(values.as_slice()))
}

/// `count` (>= 2) points on the great circle from the `x_T` of `seed_a` to that of `seed_b`
/// (spherical interpolation, [`slerp`]), one after the other: a batch to start a run from.
#[wasm_bindgen(js_name = slerpNoise)]
pub fn slerp_noise(
    seed_a: f64,
    seed_b: f64,
    count: usize,
    per_image: usize,
) -> Result<Float32Array, JsError> {
    if !(2..=64).contains(&count) {
        return Err(JsError::new(&format!("interpolation needs 2 to 64 images, got {count}")));
    }
    let a = batch_standard_normal(checked_seed(seed_a)?, 1, NoiseStream::Initial, per_image);
    let b = batch_standard_normal(checked_seed(seed_b)?, 1, NoiseStream::Initial, per_image);
    let values: Vec<f32> =
        (0..count).flat_map(|i| slerp(&a, &b, i as f64 / (count - 1) as f64)).collect();
    Ok(Float32Array::from(values.as_slice()))
}

/// Draws planar values (`batch` images of `3 x size x size`, model range `[-1, 1]`) as a
/// grid frame `{width, height, rgba}` after multiplying them by `scale` (e.g. 1/3 to show
/// noise, whose values spread over about `[-3, 3]`).
#[wasm_bindgen(js_name = valuesToFrame)]
pub fn values_to_frame(
    values: Vec<f32>,
    batch: usize,
    size: usize,
    scale: f32,
) -> Result<JsValue, JsError> {
    let scaled: Vec<f32> = values.iter().map(|v| v * scale).collect();
    let frame = Object::new();
    set_pixels(&frame, "rgba", &grid(scaled, batch, size)?)?;
    Ok(frame.into())
}

/// Draws the packed pixels of `batch` images of `size` x `size` (the `pixels` of steps taken
/// with `tiles`, the parts of a batch joined in order) as a grid frame `{width, height, rgba}`:
/// the picture [`Generator::step`] would have drawn for the whole batch.
#[wasm_bindgen(js_name = packedToFrame)]
pub fn packed_to_frame(pixels: Vec<f32>, batch: usize, size: usize) -> Result<JsValue, JsError> {
    if batch == 0 {
        return Err(JsError::new("packedToFrame needs at least one image"));
    }
    let frame = Object::new();
    let shape = BatchShape { batch, height: size, width: size };
    set_pixels(&frame, "rgba", &Picture::Packed(0).grid(&[pixels], shape)?)?;
    Ok(frame.into())
}

/// Planar `[3, height, width]` values in `[-1, 1]` from RGBA pixels (e.g. a canvas'
/// `ImageData`), the inverse of the page's drawing.
#[wasm_bindgen(js_name = rgbaToValues)]
pub fn rgba_to_values_js(
    rgba: Vec<u8>,
    width: usize,
    height: usize,
) -> Result<Float32Array, JsError> {
    let values = rgba_to_values(&Rgba { width, height, pixels: rgba })
        .map_err(|e| JsError::new(&e.to_string()))?;
    Ok(Float32Array::from(values.as_slice()))
}

fn checked_seed(seed: f64) -> Result<u64, JsError> {
    if !(seed.is_finite() && seed >= 0.0 && seed.fract() == 0.0 && seed <= MAX_SEED) {
        return Err(JsError::new(&format!(
            "the seed must be a whole number from 0 to 2^53-1, got {seed}"
        )));
    }
    Ok(seed as u64)
}

fn table_object(schedule: &NoiseSchedule) -> Result<JsValue, JsError> {
    let table = Object::new();
    let kind = match schedule.config.beta {
        BetaSchedule::Linear { .. } => "linear",
        BetaSchedule::Cosine { .. } => "cosine",
    };
    set(&table, "kind", &JsValue::from_str(kind))?;
    set(&table, "timesteps", &JsValue::from(schedule.timesteps() as u32))?;
    let columns = [
        ("betas", &schedule.betas),
        ("alphas", &schedule.alphas),
        ("alphaBars", &schedule.alpha_bars),
        ("posteriorVariance", &schedule.posterior_variance),
    ];
    for (key, column) in columns {
        set(&table, key, &Float64Array::from(column.as_slice()))?;
    }
    Ok(table.into())
}

/// WebGPU when asked for and an adapter is granted, else burn's CPU backend.
async fn pick_device(use_webgpu: bool) -> (Device, String) {
    if use_webgpu {
        match Device::wgpu_options().init_async().await {
            Ok(device) => return (device, "webgpu-f32".to_string()),
            Err(error) => web_sys::console::warn_1(
                &format!("WebGPU unavailable, using the CPU: {error}").into(),
            ),
        }
    }
    (Device::flex(), "cpu".to_string())
}

async fn read<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, JsError> {
    let data = tensor
        .into_data_async()
        .await
        .map_err(|e| JsError::new(&format!("reading from the GPU: {e:?}")))?;
    data.try_into_vec_as::<f32>().map_err(|e| JsError::new(&format!("reading from the GPU: {e:?}")))
}

/// Reads every part of `readback` in one transfer (no parts: no transfer).
async fn read_joined(readback: Readback) -> Result<Vec<Vec<f32>>, JsError> {
    let Some((joined, split)) = readback.join() else { return Ok(Vec::new()) };
    split.split(read(joined).await?).map_err(|e| JsError::new(&e.to_string()))
}

fn grid(values: Vec<f32>, batch: usize, size: usize) -> Result<Rgba, JsError> {
    Picture::Values(0).grid(&[values], BatchShape { batch, height: size, width: size })
}

/// Every `t` the page sees is numbered like the paper: `x_t` for `t = 1 ..= T`, `x_0` clean
/// (the crate's tables and samplers are 0-based: paper `t` is index `t - 1`). `t`: the noise
/// level of the image the step started from (the preview: of the image held); `level`: that of
/// the image now held (`0` once clean). For DDPM `level = t - 1`; DDIM jumps further.
fn set_counters(
    frame: &Object,
    t: usize,
    level: usize,
    step: usize,
    total: usize,
) -> Result<(), JsError> {
    set(frame, "t", &JsValue::from(t as u32))?;
    set(frame, "level", &JsValue::from(level as u32))?;
    set(frame, "step", &JsValue::from(step as u32))?;
    set(frame, "total", &JsValue::from(total as u32))?;
    set(frame, "done", &JsValue::from(step == total))
}

fn set_pixels(frame: &Object, key: &str, picture: &Rgba) -> Result<(), JsError> {
    set(frame, "width", &JsValue::from(picture.width as u32))?;
    set(frame, "height", &JsValue::from(picture.height as u32))?;
    set(frame, key, &Uint8ClampedArray::from(picture.pixels.as_slice()).into())
}

fn set(object: &Object, key: &str, value: &JsValue) -> Result<(), JsError> {
    Reflect::set(object, &JsValue::from_str(key), value)
        .map(|_| ())
        .map_err(|_| JsError::new(&format!("could not set {key} on the frame object")))
}
