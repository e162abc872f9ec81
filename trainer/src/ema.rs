//! Exponential moving average of the weights, the model the trainer publishes.
//!
//! burn 0.22 has no EMA (burn issue #5402): a visitor collects the live parameters by
//! `ParamId`, and a mapper blends them into the averaged copy, `ema = d ema + (1 - d) live`.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use ddpm_avatars::UNet;

/// The averaged model and its decay.
#[derive(Debug, Clone)]
pub struct Ema {
    /// The averaged weights (no autodiff, dropout off).
    pub model: UNet,
    /// Target decay (0.9999 in the DDPM paper).
    pub decay: f64,
}

impl Ema {
    /// Starts the average at the current weights.
    pub fn new(live: &UNet, decay: f64) -> Self {
        Self { model: live.valid(), decay }
    }

    /// Decay used at optimiser step `step` (0-based): `min(decay, (1 + step) / (10 + step))`,
    /// the usual warm-up that lets the average forget its random start quickly.
    pub fn decay_at(&self, step: u64) -> f64 {
        let warm = (1.0 + step as f64) / (10.0 + step as f64);
        self.decay.min(warm)
    }

    /// Blends the live weights in after optimiser step `step`.
    pub fn update(&mut self, live: &UNet, step: u64) {
        let mut collector = Collector::default();
        live.valid().visit(&mut collector);
        let decay = self.decay_at(step);
        let mut blender = Blender { live: collector.params, decay: decay as f32 };
        self.model = self.model.clone().map(&mut blender);
    }
}

#[derive(Default)]
struct Collector {
    params: HashMap<ParamId, Tensor<1>>,
}

impl ModuleVisitor for Collector {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let count = value.shape().num_elements();
        self.params.insert(param.id, value.reshape([count]));
    }
}

struct Blender {
    live: HashMap<ParamId, Tensor<1>>,
    decay: f32,
}

impl ModuleMapper for Blender {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(live) = self.live.remove(&param.id) else {
            return param;
        };
        let decay = self.decay;
        param.map(|average| {
            let shape = average.shape();
            average * decay + live.reshape(shape) * (1.0 - decay)
        })
    }
}
