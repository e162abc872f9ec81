//! The noise predictor `eps_theta(x_t, t)`: the DDPM paper's U-Net (Ho et al. 2020, Appendix B).

mod blocks;
mod plan;
mod time_embedding;

use blocks::normalize;

pub use blocks::{
    AttentionBlock, AttentionBlockConfig, Downsample, ResBlock, ResBlockConfig, Upsample,
};
pub use plan::{LevelPlan, ResAttentionPlan, UNetPlan};
pub use time_embedding::{TimeEmbedding, TimeEmbeddingConfig, sinusoidal_code};

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, GroupNormConfig, Initializer};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};

use blocks::conv3x3;

/// Most parameters a configuration may have (256 MB of f32 weights; the default has ~9 M).
pub const MAX_PARAMETERS: u64 = 64_000_000;

/// Largest image side a configuration may ask for, in pixels.
pub const MAX_IMAGE_SIZE: usize = 256;

/// Largest resolution (pixels per side) at which self-attention may run: 32 x 32 pixels make
/// a 1024 x 1024 attention matrix per image.
pub const MAX_ATTENTION_RESOLUTION: usize = 32;

/// Configuration of [`UNet`]. The default is the model the page ships (about 8.9 M
/// parameters); [`UNetConfig::tiny`] is for tests.
#[derive(Config, Debug, PartialEq)]
pub struct UNetConfig {
    /// Height and width of the (square) images. Default: 64.
    #[config(default = 64)]
    pub image_size: usize,
    /// Image channels in and out. Default: 3 (RGB).
    #[config(default = 3)]
    pub image_channels: usize,
    /// Channels of the first level; level `i` has `base_channels * channel_multipliers[i]`.
    /// Default: 64.
    #[config(default = 64)]
    pub base_channels: usize,
    /// Width multiplier per resolution level; each level after the first halves the
    /// resolution. Default: `[1, 2, 2, 2]` (64, 32, 16, 8 pixels at 64x64).
    #[config(default = "vec![1, 2, 2, 2]")]
    pub channel_multipliers: Vec<usize>,
    /// Residual blocks per level on the way down (the way up has one more). Default: 2.
    #[config(default = 2)]
    pub res_blocks_per_level: usize,
    /// Resolutions (in pixels) at which self-attention follows each residual block.
    /// Default: `[16]`.
    #[config(default = "vec![16]")]
    pub attention_resolutions: Vec<usize>,
    /// Dropout in residual blocks during training. Default: 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// GroupNorm groups; every level's width must be divisible by it. Default: 32.
    #[config(default = 32)]
    pub norm_groups: usize,
}

impl UNetConfig {
    /// A model small enough for CPU tests: 16x16 images, 2 levels, attention at 8x8.
    pub fn tiny() -> Self {
        Self::new()
            .with_image_size(16)
            .with_base_channels(16)
            .with_channel_multipliers(vec![1, 2])
            .with_res_blocks_per_level(1)
            .with_attention_resolutions(vec![8])
            .with_norm_groups(8)
    }

    /// The CPU-sized model (about 1.2 M parameters, 64x64 like the default): base 32, widths
    /// 32-32-64-64 (64, 32, 16, 8 pixels), one residual block per level, attention at 16x16,
    /// GroupNorm over 8 groups and no dropout. Sized for the 2-core machine the committed
    /// weights are trained on (issue 21): it sees about 10x more images per CPU-hour than the
    /// default, and a model that never sees its data twice in a session has nothing to gain
    /// from dropout.
    pub fn small() -> Self {
        Self::new()
            .with_base_channels(32)
            .with_channel_multipliers(vec![1, 1, 2, 2])
            .with_res_blocks_per_level(1)
            .with_attention_resolutions(vec![16])
            .with_dropout(0.0)
            .with_norm_groups(8)
    }

    /// Width of the timestep embedding (4x the base channels, as in the paper).
    pub fn time_channels(&self) -> usize {
        4 * self.base_channels
    }

    /// Checks that the configuration describes a buildable U-Net of a size a browser tab can
    /// hold: at most [`MAX_PARAMETERS`] parameters, images up to [`MAX_IMAGE_SIZE`] pixels,
    /// attention only where the image has at most [`MAX_ATTENTION_RESOLUTION`]² pixels.
    pub fn validate(&self) -> Result<(), String> {
        let levels = self.channel_multipliers.len();
        if levels == 0 || levels > 8 {
            return Err(format!("channel_multipliers needs 1..=8 levels, got {levels}"));
        }
        if !(8..=MAX_IMAGE_SIZE).contains(&self.image_size)
            || !self.image_size.is_multiple_of(1 << (levels - 1))
        {
            return Err(format!(
                "image_size {} must be in 8..={MAX_IMAGE_SIZE} and divisible by 2^{} for {levels} levels",
                self.image_size,
                levels - 1
            ));
        }
        // The page, the sampler and the image conversions all work in RGB.
        if self.image_channels != 3 {
            return Err(format!("image_channels must be 3 (RGB), got {}", self.image_channels));
        }
        if self.base_channels == 0
            || !self.base_channels.is_multiple_of(2)
            || self.base_channels > 512
        {
            return Err(format!(
                "base_channels must be even and in 2..=512, got {}",
                self.base_channels
            ));
        }
        if self.res_blocks_per_level == 0 || self.res_blocks_per_level > 8 {
            return Err(format!(
                "res_blocks_per_level must be 1..=8, got {}",
                self.res_blocks_per_level
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        if self.norm_groups == 0 || !self.base_channels.is_multiple_of(self.norm_groups) {
            return Err(format!(
                "base_channels {} must be divisible by norm_groups {}",
                self.base_channels, self.norm_groups
            ));
        }
        for &multiplier in &self.channel_multipliers {
            let width = self.base_channels * multiplier;
            if multiplier == 0 || multiplier > 8 || !width.is_multiple_of(self.norm_groups) {
                return Err(format!(
                    "level width {width} (base {} x {multiplier}) must be non-zero, at most 8x the base and divisible by norm_groups {}",
                    self.base_channels, self.norm_groups
                ));
            }
        }
        // Attention over r x r pixels builds an (r²)² matrix per image.
        if self.attention_resolutions.len() > 8
            || self.attention_resolutions.iter().any(|&r| r == 0 || r > MAX_ATTENTION_RESOLUTION)
        {
            return Err(format!(
                "attention_resolutions {:?}: at most 8 entries, each in 1..={MAX_ATTENTION_RESOLUTION} pixels",
                self.attention_resolutions
            ));
        }
        let parameters = self.plan().parameter_count();
        if parameters > MAX_PARAMETERS {
            return Err(format!(
                "the configured U-Net has {parameters} parameters, more than the {MAX_PARAMETERS} this build accepts"
            ));
        }
        Ok(())
    }

    /// The architecture as plain data (see [`UNetPlan`]).
    pub fn plan(&self) -> UNetPlan {
        UNetPlan::new(self)
    }

    /// Builds the U-Net with fresh random weights on `device`.
    ///
    /// # Panics
    /// If the configuration is invalid; call [`UNetConfig::validate`] first on untrusted input.
    pub fn init(&self, device: &Device) -> UNet {
        if let Err(problem) = self.validate() {
            panic!("invalid UNetConfig: {problem}");
        }
        let plan = self.plan();
        let res_block = |layer: &ResAttentionPlan| ResAttention {
            res: ResBlockConfig::new(layer.in_channels, layer.out_channels, plan.time_channels)
                .with_norm_groups(self.norm_groups)
                .with_dropout(self.dropout)
                .init(device),
            attention: layer.attention.then(|| self.attention_block(layer.out_channels, device)),
        };
        let down_blocks = plan
            .down_blocks
            .iter()
            .map(|level| DownBlock {
                layers: level.layers.iter().map(res_block).collect(),
                downsample: level.resample.map(|channels| Downsample::new(channels, device)),
            })
            .collect();
        let mid = ResAttentionPlan {
            in_channels: plan.mid_channels,
            out_channels: plan.mid_channels,
            attention: false,
        };
        let mid_block = MidBlock {
            res_1: res_block(&mid).res,
            attention: self.attention_block(plan.mid_channels, device),
            res_2: res_block(&mid).res,
        };
        let up_blocks = plan
            .up_blocks
            .iter()
            .map(|level| UpBlock {
                layers: level.layers.iter().map(res_block).collect(),
                upsample: level.resample.map(|channels| Upsample::new(channels, device)),
            })
            .collect();

        UNet {
            time_embedding: TimeEmbeddingConfig::new(self.base_channels, plan.time_channels)
                .init(device),
            conv_in: conv3x3(self.image_channels, self.base_channels).init(device),
            down_blocks,
            mid_block,
            up_blocks,
            norm_out: GroupNormConfig::new(self.norm_groups, plan.out_channels).init(device),
            conv_out: conv3x3(plan.out_channels, self.image_channels)
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }

    fn attention_block(&self, channels: usize, device: &Device) -> AttentionBlock {
        AttentionBlockConfig::new(channels).with_norm_groups(self.norm_groups).init(device)
    }
}

/// A residual block, optionally followed by self-attention.
#[derive(Module, Debug)]
pub struct ResAttention {
    /// The residual block.
    pub res: ResBlock,
    /// Self-attention at the resolutions listed in the config.
    pub attention: Option<AttentionBlock>,
}

impl ResAttention {
    fn forward(&self, x: Tensor<4>, time: Tensor<2>) -> Tensor<4> {
        let h = self.res.forward(x, time);
        match &self.attention {
            Some(attention) => attention.forward(h),
            None => h,
        }
    }
}

/// One resolution level of the down path.
#[derive(Module, Debug)]
pub struct DownBlock {
    /// Residual (+ attention) layers at this resolution.
    pub layers: Vec<ResAttention>,
    /// Halving of the resolution, absent on the last level.
    pub downsample: Option<Downsample>,
}

/// The bottleneck: residual block, attention, residual block.
#[derive(Module, Debug)]
pub struct MidBlock {
    /// First residual block.
    pub res_1: ResBlock,
    /// Self-attention at the lowest resolution.
    pub attention: AttentionBlock,
    /// Second residual block.
    pub res_2: ResBlock,
}

/// One resolution level of the up path.
#[derive(Module, Debug)]
pub struct UpBlock {
    /// Residual (+ attention) layers, each taking a skip connection.
    pub layers: Vec<ResAttention>,
    /// Doubling of the resolution, absent on the last (full-resolution) level.
    pub upsample: Option<Upsample>,
}

/// The DDPM noise predictor `eps_theta(x_t, t)`.
#[derive(Module, Debug)]
pub struct UNet {
    /// Sinusoidal timestep code + MLP.
    pub time_embedding: TimeEmbedding,
    /// Image to features.
    pub conv_in: Conv2d,
    /// Down path, one block per level.
    pub down_blocks: Vec<DownBlock>,
    /// Bottleneck.
    pub mid_block: MidBlock,
    /// Up path, one block per level (lowest resolution first).
    pub up_blocks: Vec<UpBlock>,
    /// Final normalisation.
    pub norm_out: GroupNorm,
    /// Features to predicted noise, zero-initialised (the model starts by predicting 0).
    pub conv_out: Conv2d,
}

impl UNet {
    /// Predicts the noise in `x` at the given timesteps.
    ///
    /// # Shapes
    /// - x: `[batch, channels, size, size]`, values around `[-1, 1]` plus noise
    /// - timesteps: `[batch]`, 0-based step indices as floats
    /// - output: `[batch, channels, size, size]`
    pub fn forward(&self, x: Tensor<4>, timesteps: Tensor<1>) -> Tensor<4> {
        // 1. time embedding
        let time = self.time_embedding.forward(timesteps);

        // 2. down, keeping every feature map for the skip connections
        let mut skips = vec![self.conv_in.forward(x)];
        for block in &self.down_blocks {
            for layer in &block.layers {
                let h = layer
                    .forward(skips.last().expect("skips start non-empty").clone(), time.clone());
                skips.push(h);
            }
            if let Some(downsample) = &block.downsample {
                let h = downsample.forward(skips.last().expect("skips start non-empty").clone());
                skips.push(h);
            }
        }

        // 3. middle
        let mut h = skips.last().expect("skips start non-empty").clone();
        h = self.mid_block.res_1.forward(h, time.clone());
        h = self.mid_block.attention.forward(h);
        h = self.mid_block.res_2.forward(h, time.clone());

        // 4. up, concatenating the skips in reverse order
        for block in &self.up_blocks {
            for layer in &block.layers {
                let skip = skips.pop().expect("the config builds one skip per up layer");
                h = layer.forward(Tensor::cat(vec![h, skip], 1), time.clone());
            }
            if let Some(upsample) = &block.upsample {
                h = upsample.forward(h);
            }
        }

        // 5. out
        self.conv_out.forward(silu(normalize(&self.norm_out, h)))
    }
}

/// Adds seeded Gaussian noise with standard deviation `scale` to every parameter, drawn from
/// the crate's own noise generator. An untrained U-Net predicts exactly zero (its output layers
/// start at zero); a perturbed one computes something that depends on every weight, which
/// tests and demo weights need.
pub fn perturbed(model: UNet, seed: u64, scale: f32) -> UNet {
    model.map(&mut Perturb { seed, scale, counter: 0 })
}

struct Perturb {
    seed: u64,
    scale: f32,
    counter: u32,
}

impl burn::module::ModuleMapper for Perturb {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        self.counter += 1;
        let (seed, scale, stream) =
            (self.seed, self.scale, crate::noise::NoiseStream::Aux(self.counter));
        param.map(|tensor| {
            let shape = tensor.shape();
            let noise = crate::noise::standard_normal(seed, stream, shape.num_elements());
            let noise = Tensor::<D>::from_data(
                burn::tensor::TensorData::new(noise, shape),
                &tensor.device(),
            );
            tensor + noise * scale
        })
    }
}
