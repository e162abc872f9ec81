//! Exponential moving average of the weights, the model the trainer publishes.
//!
//! burn 0.22 has no EMA (burn issue #5402): a visitor collects the live parameters by
//! `ParamId`, and a mapper blends them into the averaged copy, `ema = d ema + (1 - d) live`.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use ddpm_avatars::UNet;

/// Decay of the update after 0-based optimiser step `step` (counted across the whole
/// lineage: resumes and `--init-from` parents included): `min(target, (1 + step) / (10 + step))`.
/// The warm-up lets a fresh average forget its random start quickly; it is not in the DDPM
/// reference, which uses `target` from the first step.
pub fn decay_at(target: f64, step: u64) -> f64 {
    let warm = (1.0 + step as f64) / (10.0 + step as f64);
    target.min(warm)
}

/// The decay actually in effect in weights trained for `steps` optimiser steps in total: that
/// of the last update, `decay_at(target, steps - 1)`; 0 (raw weights) when `steps` is 0.
/// Exported metadata records this value, not the target.
pub fn effective_decay(target: f64, steps: u64) -> f64 {
    match steps.checked_sub(1) {
        Some(last_step) => decay_at(target, last_step),
        None => 0.0,
    }
}

/// The averaged model and its target decay.
#[derive(Debug, Clone)]
pub struct Ema {
    /// The averaged weights (no autodiff, dropout off).
    pub model: UNet,
    /// Target decay (0.9999 in the DDPM paper), reached after the warm-up of [`decay_at`].
    pub decay: f64,
}

impl Ema {
    /// Starts the average at the current weights (a fresh model's, or an `--init-from`
    /// parent's, which are that parent's average).
    pub fn new(live: &UNet, decay: f64) -> Self {
        Self { model: live.valid(), decay }
    }

    /// Decay of the update after optimiser step `step` (0-based, lineage-wide): see
    /// [`decay_at`].
    pub fn decay_at(&self, step: u64) -> f64 {
        decay_at(self.decay, step)
    }

    /// Blends the live weights in after optimiser step `step` (0-based, lineage-wide), so a
    /// run that continues a parent keeps the parent's position in the warm-up.
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

#[cfg(test)]
mod tests {
    use super::{decay_at, effective_decay};

    #[test]
    fn warm_up_follows_one_plus_n_over_ten_plus_n_until_the_target() {
        // By hand: (1 + 0) / (10 + 0) = 0.1; (1 + 90) / (10 + 90) = 0.91.
        assert_eq!(decay_at(0.9999, 0), 0.1);
        assert_eq!(decay_at(0.9999, 90), 0.91);
        // (1 + n) / (10 + n) = 0.9999 solves to n = 8.999 / 0.0001 = 89_990.
        assert_eq!(decay_at(0.9999, 89_989), 89_990.0 / 89_999.0);
        assert!(decay_at(0.9999, 89_989) < 0.9999, "still warming up one step before");
        assert_eq!(decay_at(0.9999, 89_991), 0.9999);
        assert_eq!(decay_at(0.99, 10_000), 0.99);
    }

    #[test]
    fn effective_decay_is_that_of_the_last_update() {
        assert_eq!(effective_decay(0.9999, 0), 0.0, "no update: raw weights");
        assert_eq!(effective_decay(0.9999, 1), 0.1);
        // The example: ~5.5k steps give ~0.998, not the 0.9999 target.
        // By hand: (1 + 5499) / (10 + 5499) = 5500 / 5509 = 0.998366...
        let after_5500 = effective_decay(0.9999, 5500);
        assert!((after_5500 - 0.998_366_3).abs() < 1e-7, "{after_5500}");
        assert_eq!(effective_decay(0.9999, 1_000_000), 0.9999);
    }
}
