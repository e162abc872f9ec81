//! Gradient clipping by the global norm over all parameters (as the DDPM paper's code does);
//! burn's own `GradientClippingConfig::Norm` clips each tensor separately.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use ddpm_avatars::UNet;

/// Scales all gradients by `min(1, max_norm / ||g||)` and returns `||g||` (before clipping)
/// as a one-element tensor. Nothing is read back: the scale stays on the device.
pub fn clip_global_norm(model: &UNet, grads: &mut GradientsParams, max_norm: f32) -> Tensor<1> {
    let mut squares = SumOfSquares { grads, total: None };
    model.visit(&mut squares);
    let Some(total) = squares.total else {
        // No parameter received a gradient: nothing to clip.
        return Tensor::zeros([1], &model.devices()[0]);
    };
    let norm = total.sqrt();
    let scale = (norm.clone() + 1e-6).recip().mul_scalar(max_norm).clamp_max(1.0);
    model.visit(&mut Rescale { grads, scale });
    norm
}

struct SumOfSquares<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SumOfSquares<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let sum = grad.square().sum();
            self.total = Some(match self.total.take() {
                Some(total) => total + sum,
                None => sum,
            });
        }
    }
}

struct Rescale<'a> {
    grads: &'a mut GradientsParams,
    scale: Tensor<1>,
}

impl ModuleVisitor for Rescale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            let scale = self.scale.clone().reshape([1; D]);
            self.grads.register(param.id, grad * scale);
        }
    }
}
