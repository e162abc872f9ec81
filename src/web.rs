//! The browser adapter (wasm32 only): a [`Generator`] that JavaScript drives one reverse
//! step at a time. All logic lives in the rest of the crate; this file only converts between
//! JS values and the crate's types, and never unwraps anything that comes from the page, the
//! network or the GPU.

use burn::tensor::{Device, Tensor};
use js_sys::{Object, Reflect, Uint8ClampedArray};
use wasm_bindgen::prelude::*;

use crate::UNet;
use crate::image::{BatchShape, batch_to_grid, square_columns};
use crate::sampler::{Sampler, SamplerConfig, SamplerKind};
use crate::schedule::NoiseSchedule;
use crate::weights::{WeightsMetadata, fingerprint_probe, load_from_bytes};

/// Panics (bugs, not user errors) print a Rust backtrace to the console.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

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

    /// Recomputes the golden fingerprint on this device; returns the largest difference from
    /// the recorded values (`-1` when the file has none).
    #[wasm_bindgen(js_name = checkFingerprint)]
    pub async fn check_fingerprint(&self) -> Result<f64, JsError> {
        let Some(recorded) = self.metadata.fingerprint.clone() else { return Ok(-1.0) };
        let probe = fingerprint_probe(&self.model, &self.metadata, &self.device);
        let values = read(probe).await?;
        Ok(match recorded.check(&values, f32::INFINITY) {
            Ok(largest) | Err(largest) => f64::from(largest),
        })
    }

    /// Starts a run. `sampler` is `"ddpm"` (all `T` steps) or `"ddim"` (`steps` steps,
    /// `eta` noise); `clip` clips the predicted `x_0` (recommended).
    pub fn start(
        &mut self,
        seed: f64,
        batch: usize,
        sampler: &str,
        steps: usize,
        clip: bool,
        eta: f64,
    ) -> Result<(), JsError> {
        if !(seed.is_finite() && seed >= 0.0 && seed.fract() == 0.0 && seed <= MAX_SEED) {
            return Err(JsError::new(&format!(
                "the seed must be a whole number from 0 to 2^53-1, got {seed}"
            )));
        }
        let kind = match sampler {
            "ddpm" => SamplerKind::Ddpm,
            "ddim" => SamplerKind::Ddim { eta },
            other => {
                return Err(JsError::new(&format!("unknown sampler {other:?} (ddpm or ddim)")));
            }
        };
        let config = SamplerConfig { kind, steps, clip_x0: clip };
        let size = self.metadata.image.size;
        let image = [self.metadata.image.channels, size, size];
        let run = Sampler::new(&self.schedule, config, seed as u64, batch, image, &self.device)
            .map_err(|e| JsError::new(&e.to_string()))?;
        self.sampler = Some(run);
        Ok(())
    }

    /// Takes one reverse step and returns `{timestep, step, total, done}`; with `draw` also
    /// `{width, height, rgba}` (the grid of the new `x_t`), and with `with_x0` also `x0` (the
    /// grid of the predicted clean images). Reading pixels waits for the GPU, so skipping
    /// `draw` on most steps runs faster.
    pub async fn step(&mut self, draw: bool, with_x0: bool) -> Result<JsValue, JsError> {
        let sampler =
            self.sampler.as_mut().ok_or_else(|| JsError::new("no run: call start() first"))?;
        let Some(output) = sampler.step(&self.model) else {
            return Err(JsError::new("the run is complete: call start() for a new one"));
        };
        let (step, total) = (sampler.completed_steps(), sampler.total_steps());
        let batch = output.x.dims()[0];
        let size = self.metadata.image.size;
        let frame = Object::new();
        set_counters(&frame, output.timestep, step, total)?;
        if draw {
            set_pixels(&frame, "rgba", &grid(read(output.x).await?, batch, size)?)?;
        }
        if with_x0 {
            set_pixels(&frame, "x0", &grid(read(output.predicted_x0).await?, batch, size)?)?;
        }
        Ok(frame.into())
    }

    /// The current `x_t` as a frame (before the first step: the starting noise `x_T`).
    pub async fn preview(&self) -> Result<JsValue, JsError> {
        let sampler =
            self.sampler.as_ref().ok_or_else(|| JsError::new("no run: call start() first"))?;
        let batch = sampler.x().dims()[0];
        let x = grid(read(sampler.x().clone()).await?, batch, self.metadata.image.size)?;
        let timestep = sampler.next_timestep().map_or(0, |t| t + 1);
        let frame = Object::new();
        set_counters(&frame, timestep, sampler.completed_steps(), sampler.total_steps())?;
        set_pixels(&frame, "rgba", &x)?;
        Ok(frame.into())
    }
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

fn grid(values: Vec<f32>, batch: usize, size: usize) -> Result<crate::image::Rgba, JsError> {
    let shape = BatchShape { batch, height: size, width: size };
    batch_to_grid(&values, shape, square_columns(batch), 2)
        .map_err(|e| JsError::new(&e.to_string()))
}

fn set_counters(frame: &Object, timestep: usize, step: usize, total: usize) -> Result<(), JsError> {
    set(frame, "timestep", &JsValue::from(timestep as u32))?;
    set(frame, "step", &JsValue::from(step as u32))?;
    set(frame, "total", &JsValue::from(total as u32))?;
    set(frame, "done", &JsValue::from(step == total))
}

fn set_pixels(frame: &Object, key: &str, picture: &crate::image::Rgba) -> Result<(), JsError> {
    set(frame, "width", &JsValue::from(picture.width as u32))?;
    set(frame, "height", &JsValue::from(picture.height as u32))?;
    set(frame, key, &Uint8ClampedArray::from(picture.pixels.as_slice()).into())
}

fn set(object: &Object, key: &str, value: &JsValue) -> Result<(), JsError> {
    Reflect::set(object, &JsValue::from_str(key), value)
        .map(|_| ())
        .map_err(|_| JsError::new(&format!("could not set {key} on the frame object")))
}
