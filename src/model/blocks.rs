//! The U-Net's building blocks: residual block with timestep input, self-attention,
//! down- and upsampling (Ho et al. 2020, Appendix B; the PixelCNN++ backbone).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, GroupNorm, GroupNormConfig, Initializer, Linear, LinearConfig,
    PaddingConfig2d,
};
use burn::tensor::activation::silu;
use burn::tensor::module::{attention, interpolate};
use burn::tensor::ops::{AttentionModuleOptions, InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, FloatDType, Tensor};

/// A 3x3 convolution that keeps the spatial size.
pub(crate) fn conv3x3(in_channels: usize, out_channels: usize) -> Conv2dConfig {
    Conv2dConfig::new([in_channels, out_channels], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
}

/// GroupNorm computed in f32 whatever `x`'s dtype, the result in `x`'s dtype: with mixed
/// precision (the trainer's `--precision bf16`) the statistics keep f32's accuracy, and the
/// norm's scale and shift stay f32. In f32 the casts do nothing.
pub(crate) fn normalize(norm: &GroupNorm, x: Tensor<4>) -> Tensor<4> {
    let dtype: FloatDType = x.dtype().into();
    norm.forward(x.cast(FloatDType::F32)).cast(dtype)
}

/// Configuration of [`ResBlock`].
#[derive(Config, Debug)]
pub struct ResBlockConfig {
    /// Channels in.
    pub in_channels: usize,
    /// Channels out.
    pub out_channels: usize,
    /// Width of the timestep embedding.
    pub time_channels: usize,
    /// GroupNorm groups (32 in the paper).
    #[config(default = 32)]
    pub norm_groups: usize,
    /// Dropout before the second convolution (0.1 in the paper).
    #[config(default = 0.1)]
    pub dropout: f64,
}

/// `h = conv(SiLU(GN(x))) + W SiLU(temb); h = conv(dropout(SiLU(GN(h)))); x' + h`,
/// with a 1x1 convolution on the skip path when the width changes.
#[derive(Module, Debug)]
pub struct ResBlock {
    /// Normalisation before the first convolution.
    pub norm_1: GroupNorm,
    /// First 3x3 convolution, `in -> out`.
    pub conv_1: Conv2d,
    /// Projection of the timestep embedding to a per-channel bias.
    pub time_projection: Linear,
    /// Normalisation before the second convolution.
    pub norm_2: GroupNorm,
    /// Dropout (active only while training on an autodiff device).
    pub dropout: Dropout,
    /// Second 3x3 convolution, zero-initialised so a new block starts as the identity.
    pub conv_2: Conv2d,
    /// 1x1 convolution on the skip path when `in != out`.
    pub skip: Option<Conv2d>,
}

impl ResBlockConfig {
    /// Builds the block on `device`.
    pub fn init(&self, device: &Device) -> ResBlock {
        let (inc, outc) = (self.in_channels, self.out_channels);
        ResBlock {
            norm_1: GroupNormConfig::new(self.norm_groups, inc).init(device),
            conv_1: conv3x3(inc, outc).init(device),
            time_projection: LinearConfig::new(self.time_channels, outc).init(device),
            norm_2: GroupNormConfig::new(self.norm_groups, outc).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            conv_2: conv3x3(outc, outc).with_initializer(Initializer::Zeros).init(device),
            skip: (inc != outc).then(|| Conv2dConfig::new([inc, outc], [1, 1]).init(device)),
        }
    }
}

impl ResBlock {
    /// # Shapes
    /// - x: `[batch, in, height, width]`, time: `[batch, time_channels]`
    /// - output: `[batch, out, height, width]`
    pub fn forward(&self, x: Tensor<4>, time: Tensor<2>) -> Tensor<4> {
        let h = self.conv_1.forward(silu(normalize(&self.norm_1, x.clone())));
        let time_bias = self.time_projection.forward(silu(time)).unsqueeze_dims::<4>(&[2, 3]);
        let h = h + time_bias;
        let h = self.conv_2.forward(self.dropout.forward(silu(normalize(&self.norm_2, h))));
        let skip = match &self.skip {
            Some(conv) => conv.forward(x),
            None => x,
        };
        skip + h
    }
}

/// Configuration of [`AttentionBlock`].
#[derive(Config, Debug)]
pub struct AttentionBlockConfig {
    /// Channels in and out.
    pub channels: usize,
    /// GroupNorm groups.
    #[config(default = 32)]
    pub norm_groups: usize,
}

/// Single-head self-attention over all pixels, with a residual connection.
#[derive(Module, Debug)]
pub struct AttentionBlock {
    /// Normalisation of the input.
    pub norm: GroupNorm,
    /// Query, key and value projections in one matrix, `C -> 3C`.
    pub qkv: Linear,
    /// Output projection, zero-initialised so a new block starts as the identity.
    pub projection: Linear,
}

impl AttentionBlockConfig {
    /// Builds the block on `device`.
    pub fn init(&self, device: &Device) -> AttentionBlock {
        let c = self.channels;
        AttentionBlock {
            norm: GroupNormConfig::new(self.norm_groups, c).init(device),
            qkv: LinearConfig::new(c, 3 * c).init(device),
            projection: LinearConfig::new(c, c).with_initializer(Initializer::Zeros).init(device),
        }
    }
}

impl AttentionBlock {
    /// # Shapes
    /// - x, output: `[batch, channels, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, channels, height, width] = x.dims();
        // [B, C, H, W] -> [B, 1 head, H*W, C]
        let tokens = normalize(&self.norm, x.clone())
            .reshape([batch, channels, height * width])
            .swap_dims(1, 2);
        // The attention itself in f32 (its softmax above all), like the norms; q, k, v come
        // from the layer's dtype (bf16 with mixed precision) and the result goes back to it.
        let dtype: FloatDType = tokens.dtype().into();
        let qkv = self.qkv.forward(tokens).cast(FloatDType::F32).unsqueeze_dim::<4>(1).chunk(3, 3);
        let [query, key, value]: [Tensor<4>; 3] =
            qkv.try_into().expect("chunk(3) gives three tensors");
        // softmax(q k^T / sqrt(C)) v. The scale is the default one, given explicitly because
        // burn's GPU backend then always takes its matmul + softmax path (burn-cubecl's
        // `attention` falls back for an explicit scale): the path the plain builds (the
        // page's WebGPU, the trainer's `gpu`) take anyway, and the one trainer/tests/vulkan.rs
        // checks against the CPU. With `autotune` (trainer features `gpu-tuned`, `cuda`) it
        // would otherwise pick among flash-attention kernels that no test here has checked.
        let options = AttentionModuleOptions {
            scale: Some(1.0 / (channels as f64).sqrt()),
            ..AttentionModuleOptions::default()
        };
        let attended = attention(query, key, value, None, None, options);
        let out = self.projection.forward(attended.squeeze_dim::<3>(1).cast(dtype));
        x + out.swap_dims(1, 2).reshape([batch, channels, height, width])
    }
}

/// Halves the resolution with a stride-2 3x3 convolution.
#[derive(Module, Debug)]
pub struct Downsample {
    /// The strided convolution.
    pub conv: Conv2d,
}

impl Downsample {
    /// Builds the layer for `channels` on `device`.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self { conv: conv3x3(channels, channels).with_stride([2, 2]).init(device) }
    }

    /// # Shapes
    /// - x: `[batch, c, h, w]`; output: `[batch, c, h / 2, w / 2]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(x)
    }
}

/// Doubles the resolution: nearest-neighbour upsampling, then a 3x3 convolution.
#[derive(Module, Debug)]
pub struct Upsample {
    /// The convolution after upsampling.
    pub conv: Conv2d,
}

impl Upsample {
    /// Builds the layer for `channels` on `device`.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self { conv: conv3x3(channels, channels).init(device) }
    }

    /// # Shapes
    /// - x: `[batch, c, h, w]`; output: `[batch, c, 2h, 2w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, height, width] = x.dims();
        let options = InterpolateOptions::new(InterpolateMode::Nearest)
            .with_output_size([2 * height, 2 * width]);
        self.conv.forward(interpolate(x, options))
    }
}
