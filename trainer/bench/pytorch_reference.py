#!/usr/bin/env python3
"""PyTorch reference for `trainer bench`: the same U-Net, the same training step and the same
sampling step, timed the same way, so the Rust figures can be given as a ratio of PyTorch's
on the same cores.

What is mirrored, and from where:
- the U-Net: `src/model/{mod,blocks,plan,time_embedding}.rs`, module for module, so the
  parameter count is identical (checked at start-up against `EXPECTED_PARAMETERS`);
- a training step: `trainer/src/train.rs` (`train_step` / `optimise_on`): a batch from a
  64-image synthetic dataset (random bytes, random horizontal flips, bytes -> [-1, 1]), uniform
  timesteps, `eps ~ N(0, I)`, `q_sample` (eq. 4), L_simple = mean squared error in f32 (eq. 14),
  the loss read back, backward, global-norm clipping at 1.0 (`trainer/src/clip.rs`), AdamW with
  betas 0.9 / 0.999, eps 1e-8, no weight decay, dropout on;
- bf16: `trainer/src/precision.rs` keeps f32 master weights and runs convolutions, linear
  layers and activations in bf16, GroupNorm, attention and the loss in f32. Here that is
  `torch.autocast("cpu", dtype=torch.bfloat16)` (what a PyTorch user would write) plus the
  same two f32 islands the Rust model has (`normalize` and the attention core): CPU autocast
  would otherwise run GroupNorm and scaled_dot_product_attention in bf16;
- a sampling step: `trainer/src/bench.rs` times `Sampler::step` of a deterministic DDIM
  sampler (`SamplerConfig::ddim`, eta 0, leading spacing, x_0 clipped to [-1, 1]): one U-Net
  forward without gradients plus the update (Song et al. 2021, eq. 12), in f32 whatever
  `--precision` says (the Rust bench builds its sampling model in f32 too), at batch 1 and 16.

Timing follows `trainer/src/bench.rs`: `--warmup` untimed steps, then `--steps` (training) or
`--sample-steps` (sampling) timed ones; a training step ends when its loss is read back.
The data are random (speed does not depend on pixel values); the seed is fixed.

Run (eager mode; no torch.compile, as the Rust side compiles nothing):
    .libtorch/bin/python trainer/bench/pytorch_reference.py --config small --threads 2 \
        --precision f32 --json bench-pytorch.json
"""

from __future__ import annotations

import argparse
import enum
import json
import math
import sys
import time
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

# Parameter counts of the Rust configs. default and tiny: README ("8,952,067 / 177,427").
# small, by hand from `UNetPlan::new` and `Shapes::res_block` / `attention` (plan.rs), with
# base 32, widths 32-32-64-64, 1 res block per level, attention at 16 px, time width 128:
#   res(i, o) = 2i + (9io + o) + (128o + o) + 2o + (9o² + o) + [i != o](io + o)
#   attn(c) = 2c + (3c² + 3c) + (c² + c)                 conv3(c) = 9c² + c
#   time MLP  32*128+128 + 128*128+128                                         =    20,736
#   conv_in   9*3*32 + 32                                                      =       896
#   down      res(32,32)+conv3(32) | res(32,32)+conv3(32) | res(32,64)+attn(64)+conv3(64)
#             | res(64,64) = 32,000 + 32,000 + 119,680 + 82,368                =   266,048
#   mid       2 res(64,64) + attn(64)                                          =   181,504
#   up (skips popped 64,64 | 64,32 | 32,32 | 32,32)
#             2 res(128,64)+conv3(64) | res(128,64)+res(96,64)+2 attn(64)+conv3(64)
#             | res(96,32)+res(64,32)+conv3(32) | 2 res(64,32)
#             = 292,160 + 305,152 + 87,776 + 68,224                            =   753,312
#   norm_out 2*32 + conv_out 9*32*3 + 3                                        =       931
#   total                                                                      = 1,223,427
# The model below, built independently from the module structure, prints the same number.
EXPECTED_PARAMETERS = {"default": 8_952_067, "small": 1_223_427, "tiny": 177_427}

SAMPLE_BATCHES = (1, 16)
DATASET_IMAGES = 64  # the Rust bench's synthetic dataset holds 64 images
SEED = 0


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class UNetConfig:
    """`UNetConfig` of src/model/mod.rs; the defaults are `UNetConfig::new()`."""

    image_size: int = 64
    image_channels: int = 3
    base_channels: int = 64
    channel_multipliers: tuple[int, ...] = (1, 2, 2, 2)
    res_blocks_per_level: int = 2
    attention_resolutions: tuple[int, ...] = (16,)
    dropout: float = 0.1
    norm_groups: int = 32

    @staticmethod
    def tiny() -> UNetConfig:
        """`UNetConfig::tiny()`: 16x16, base 16, [1, 2], attention at 8, 8 groups."""
        return replace(
            UNetConfig(),
            image_size=16,
            base_channels=16,
            channel_multipliers=(1, 2),
            res_blocks_per_level=1,
            attention_resolutions=(8,),
            norm_groups=8,
        )

    @staticmethod
    def small() -> UNetConfig:
        """`UNetConfig::small()`: 64x64, base 32, [1, 1, 2, 2], attention at 16, no dropout."""
        return replace(
            UNetConfig(),
            base_channels=32,
            channel_multipliers=(1, 1, 2, 2),
            res_blocks_per_level=1,
            attention_resolutions=(16,),
            dropout=0.0,
            norm_groups=8,
        )

    @property
    def time_channels(self) -> int:
        return 4 * self.base_channels


CONFIGS = {"default": UNetConfig(), "small": UNetConfig.small(), "tiny": UNetConfig.tiny()}


class Precision(enum.Enum):
    """`trainer/src/precision.rs`'s `Precision`."""

    F32 = "f32"
    BF16 = "bf16"


@dataclass(frozen=True)
class ResAttentionPlan:
    in_channels: int
    out_channels: int
    attention: bool


@dataclass
class LevelPlan:
    layers: list[ResAttentionPlan] = field(default_factory=list)
    resample: int | None = None


@dataclass
class UNetPlan:
    """`UNetPlan::new` (plan.rs): the down path pushes every feature map on a skip stack, each
    up-path layer pops one and concatenates it."""

    down_blocks: list[LevelPlan]
    mid_channels: int
    up_blocks: list[LevelPlan]
    out_channels: int

    @staticmethod
    def new(config: UNetConfig) -> UNetPlan:
        last_level = len(config.channel_multipliers) - 1
        skip_channels = [config.base_channels]
        channels = config.base_channels
        resolution = config.image_size
        down_blocks = []
        for level, multiplier in enumerate(config.channel_multipliers):
            out_channels = config.base_channels * multiplier
            block = LevelPlan()
            for _ in range(config.res_blocks_per_level):
                attention = resolution in config.attention_resolutions
                block.layers.append(ResAttentionPlan(channels, out_channels, attention))
                channels = out_channels
                skip_channels.append(channels)
            if level != last_level:
                block.resample = channels
                skip_channels.append(channels)
                resolution //= 2
            down_blocks.append(block)
        mid_channels = channels

        up_blocks = []
        for level, multiplier in reversed(list(enumerate(config.channel_multipliers))):
            out_channels = config.base_channels * multiplier
            block = LevelPlan()
            for _ in range(config.res_blocks_per_level + 1):
                skip = skip_channels.pop() if skip_channels else 0
                attention = resolution in config.attention_resolutions
                block.layers.append(ResAttentionPlan(channels + skip, out_channels, attention))
                channels = out_channels
            if level != 0:
                block.resample = channels
                resolution *= 2
            up_blocks.append(block)
        return UNetPlan(down_blocks, mid_channels, up_blocks, channels)


# ---------------------------------------------------------------- the U-Net (src/model)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """blocks.rs `conv3x3`: padding 1 on every side."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


def zero_init(module: nn.Module) -> nn.Module:
    """burn's `Initializer::Zeros` on weight and bias."""
    nn.init.zeros_(module.weight)
    nn.init.zeros_(module.bias)
    return module


def normalize(norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    """blocks.rs `normalize`: GroupNorm in f32 whatever `x`'s dtype, the result in `x`'s."""
    with torch.autocast("cpu", enabled=False):
        return norm(x.float()).to(x.dtype)


def sinusoidal_code(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """time_embedding.rs `sinusoidal_code`: `w_i = 10000^(-i / (h - 1))`, `h = dim / 2`."""
    half = dim // 2
    denominator = max(half, 2) - 1
    exponents = torch.arange(half, dtype=torch.float64) * (-math.log(10_000.0) / denominator)
    frequencies = exponents.exp().to(torch.float32)
    angles = timesteps[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class TimeEmbedding(nn.Module):
    """time_embedding.rs `TimeEmbedding`: `Linear -> SiLU -> Linear` over the sinusoidal code."""

    def __init__(self, sinusoidal_dim: int, embedding_dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(sinusoidal_dim, embedding_dim)
        self.linear_2 = nn.Linear(embedding_dim, embedding_dim)
        self.sinusoidal_dim = sinusoidal_dim

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        code = sinusoidal_code(timesteps, self.sinusoidal_dim)
        return self.linear_2(F.silu(self.linear_1(code)))


class ResBlock(nn.Module):
    """blocks.rs `ResBlock`: `h = conv(SiLU(GN(x))) + W SiLU(temb);
    h = conv(dropout(SiLU(GN(h)))); skip(x) + h`."""

    def __init__(self, inc: int, outc: int, time_channels: int, groups: int, dropout: float):
        super().__init__()
        self.norm_1 = nn.GroupNorm(groups, inc)
        self.conv_1 = conv3x3(inc, outc)
        self.time_projection = nn.Linear(time_channels, outc)
        self.norm_2 = nn.GroupNorm(groups, outc)
        self.dropout = nn.Dropout(dropout)
        self.conv_2 = zero_init(conv3x3(outc, outc))
        self.skip = nn.Conv2d(inc, outc, 1) if inc != outc else None

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        h = self.conv_1(F.silu(normalize(self.norm_1, x)))
        h = h + self.time_projection(F.silu(time))[:, :, None, None]
        h = self.conv_2(self.dropout(F.silu(normalize(self.norm_2, h))))
        skip = self.skip(x) if self.skip is not None else x
        return skip + h


class AttentionBlock(nn.Module):
    """blocks.rs `AttentionBlock`: single-head self-attention over all pixels, residual."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.projection = zero_init(nn.Linear(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        tokens = normalize(self.norm, x).reshape(batch, channels, height * width).transpose(1, 2)
        dtype = tokens.dtype
        qkv = self.qkv(tokens)
        # softmax(q k^T / sqrt(C)) v in f32, as the Rust block casts q, k, v to f32.
        with torch.autocast("cpu", enabled=False):
            query, key, value = qkv.float().unsqueeze(1).chunk(3, dim=3)
            attended = F.scaled_dot_product_attention(
                query, key, value, scale=1.0 / math.sqrt(channels)
            )
        out = self.projection(attended.squeeze(1).to(dtype))
        return x + out.transpose(1, 2).reshape(batch, channels, height, width)


class Downsample(nn.Module):
    """blocks.rs `Downsample`: stride-2 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv3x3(channels, channels, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """blocks.rs `Upsample`: nearest-neighbour x2, then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResAttention(nn.Module):
    """mod.rs `ResAttention`: a residual block, optionally followed by self-attention."""

    def __init__(self, layer: ResAttentionPlan, config: UNetConfig):
        super().__init__()
        self.res = ResBlock(
            layer.in_channels,
            layer.out_channels,
            config.time_channels,
            config.norm_groups,
            config.dropout,
        )
        self.attention = (
            AttentionBlock(layer.out_channels, config.norm_groups) if layer.attention else None
        )

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        h = self.res(x, time)
        return self.attention(h) if self.attention is not None else h


class DownBlock(nn.Module):
    def __init__(self, level: LevelPlan, config: UNetConfig):
        super().__init__()
        self.layers = nn.ModuleList(ResAttention(layer, config) for layer in level.layers)
        self.downsample = Downsample(level.resample) if level.resample is not None else None


class MidBlock(nn.Module):
    def __init__(self, channels: int, config: UNetConfig):
        super().__init__()
        mid = ResAttentionPlan(channels, channels, attention=False)
        self.res_1 = ResAttention(mid, config).res
        self.attention = AttentionBlock(channels, config.norm_groups)
        self.res_2 = ResAttention(mid, config).res


class UpBlock(nn.Module):
    def __init__(self, level: LevelPlan, config: UNetConfig):
        super().__init__()
        self.layers = nn.ModuleList(ResAttention(layer, config) for layer in level.layers)
        self.upsample = Upsample(level.resample) if level.resample is not None else None


class UNet(nn.Module):
    """mod.rs `UNet` / `UNetConfig::init`: the DDPM noise predictor `eps_theta(x_t, t)`."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        plan = UNetPlan.new(config)
        self.time_embedding = TimeEmbedding(config.base_channels, config.time_channels)
        self.conv_in = conv3x3(config.image_channels, config.base_channels)
        self.down_blocks = nn.ModuleList(DownBlock(level, config) for level in plan.down_blocks)
        self.mid_block = MidBlock(plan.mid_channels, config)
        self.up_blocks = nn.ModuleList(UpBlock(level, config) for level in plan.up_blocks)
        self.norm_out = nn.GroupNorm(config.norm_groups, plan.out_channels)
        self.conv_out = zero_init(conv3x3(plan.out_channels, config.image_channels))

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        # 1. time embedding
        time = self.time_embedding(timesteps)

        # 2. down, keeping every feature map for the skip connections
        skips = [self.conv_in(x)]
        for block in self.down_blocks:
            for layer in block.layers:
                skips.append(layer(skips[-1], time))
            if block.downsample is not None:
                skips.append(block.downsample(skips[-1]))

        # 3. middle
        h = self.mid_block.res_1(skips[-1], time)
        h = self.mid_block.attention(h)
        h = self.mid_block.res_2(h, time)

        # 4. up, concatenating the skips in reverse order
        for block in self.up_blocks:
            for layer in block.layers:
                h = layer(torch.cat([h, skips.pop()], dim=1), time)
            if block.upsample is not None:
                h = block.upsample(h)

        # 5. out
        return self.conv_out(F.silu(normalize(self.norm_out, h)))


def parameter_count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


# ---------------------------------------------------------------- schedule (src/schedule.rs)


class NoiseSchedule:
    """The tables `trainer bench` uses: linear betas 1e-4 .. 0.02, T = 1000, computed in f64."""

    def __init__(self, timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        self.timesteps = timesteps
        self.betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        self.alpha_bars = torch.cumprod(1.0 - self.betas, dim=0)
        self.sqrt_alpha_bars = self.alpha_bars.sqrt()
        self.sqrt_one_minus_alpha_bars = (1.0 - self.alpha_bars).sqrt()

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """`x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps` (eq. 4), per item."""
        signal = self.sqrt_alpha_bars[t].float()[:, None, None, None]
        noise_weight = self.sqrt_one_minus_alpha_bars[t].float()[:, None, None, None]
        return x0 * signal + noise * noise_weight


# ---------------------------------------------------------------- the measurements


def train_images_per_second(
    config: UNetConfig, precision: Precision, batch: int, warmup: int, steps: int
) -> float:
    """`trainer/src/bench.rs`: `warmup + steps` calls of `train_step`, the last `steps` timed."""
    schedule = NoiseSchedule()
    model = UNet(config).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0
    )
    size = config.image_size
    dataset = torch.randint(0, 256, (DATASET_IMAGES, 3, size, size), dtype=torch.uint8)
    started = None
    for step in range(warmup + steps):
        if step == warmup:
            started = time.perf_counter()
        # The batch (trainer/src/data/batches.rs): images, random flips, bytes -> [-1, 1].
        indices = torch.randint(0, DATASET_IMAGES, (batch,))
        flips = torch.rand(batch) < 0.5
        images = dataset[indices]
        images = torch.where(flips[:, None, None, None], images.flip(3), images)
        x0 = images.float() / 127.5 - 1.0
        timesteps = torch.randint(0, schedule.timesteps, (batch,))
        noise = torch.randn_like(x0)
        x_t = schedule.q_sample(x0, timesteps, noise)
        # optimise_on: L_simple in f32 whatever the U-Net's arithmetic.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision is Precision.BF16):
            prediction = model(x_t, timesteps.float())
        loss = F.mse_loss(prediction.float(), noise)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise RuntimeError(f"the loss became {loss_value} at step {step + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    if started is None:
        return float("nan")
    return steps * batch / (time.perf_counter() - started)


def ddim_timesteps(total: int, steps: int) -> list[int]:
    """sampler.rs `spaced_timesteps`, leading spacing: `i T / steps`, descending."""
    return [i * total // steps for i in reversed(range(steps))]


@torch.no_grad()
def sampling_ms_per_step(config: UNetConfig, batch: int, warmup: int, steps: int) -> float:
    """`trainer/src/bench.rs`: `Sampler::step` of DDIM (eta 0, x_0 clipped), f32, no grad."""
    schedule = NoiseSchedule()
    model = UNet(config).eval()
    size = config.image_size
    total = warmup + steps
    visited = ddim_timesteps(schedule.timesteps, min(total, schedule.timesteps))
    x = torch.randn(batch, config.image_channels, size, size)
    started = time.perf_counter()
    for step in range(total):
        if step == warmup:
            started = time.perf_counter()
        # Past T steps (only when warm-up + timed steps exceed 1000) the timesteps repeat;
        # the Rust sampler would stop there, but the cost of a step does not depend on t.
        position = step % len(visited)
        t = visited[position]
        previous = visited[position + 1] if position + 1 < len(visited) else None
        alpha_bar = schedule.alpha_bars[t].item()
        alpha_bar_prev = schedule.alpha_bars[previous].item() if previous is not None else 1.0
        predicted_noise = model(x, torch.full((batch,), float(t)))
        # Song et al. 2021, eq. 12 with sigma = 0 and the clipped x_0 (sampler.rs `ddim_step`).
        predicted_x0 = x * math.sqrt(1.0 / alpha_bar) - predicted_noise * math.sqrt(
            1.0 / alpha_bar - 1.0
        )
        predicted_x0 = predicted_x0.clamp(-1.0, 1.0)
        noise = (x - predicted_x0 * math.sqrt(alpha_bar)) * (1.0 / math.sqrt(1.0 - alpha_bar))
        direction_weight = math.sqrt(max(1.0 - alpha_bar_prev, 0.0))
        x = predicted_x0 * math.sqrt(alpha_bar_prev) + noise * direction_weight
    return (time.perf_counter() - started) * 1000.0 / max(steps, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="default")
    parser.add_argument("--batch", type=int, default=32, help="training batch size")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before each figure")
    parser.add_argument("--sample-steps", type=int, default=50, help="timed sampling steps")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--precision", choices=[p.value for p in Precision], default=Precision.F32.value
    )
    parser.add_argument("--json", metavar="OUT", help="also write the figures to this file")
    args = parser.parse_args(argv)
    precision = Precision(args.precision)

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    config = CONFIGS[args.config]
    parameters = parameter_count(UNet(config))
    expected = EXPECTED_PARAMETERS[args.config]
    print(f"- config {args.config}: {parameters:,} parameters (Rust: {expected:,})")
    if parameters != expected:
        print("error: the parameter count differs from the Rust model's", file=sys.stderr)
        return 1
    print(f"- torch {torch.__version__}, {args.threads} threads, precision {precision.value}")

    img_per_s = train_images_per_second(
        config, precision, args.batch, args.warmup, args.steps
    )
    print(
        f"| training, batch {args.batch}, {precision.value} (img/s) | {img_per_s:.2f} |",
        flush=True,
    )
    sample_ms = {}
    for batch in SAMPLE_BATCHES:
        sample_ms[str(batch)] = sampling_ms_per_step(
            config, batch, args.warmup, args.sample_steps
        )
        figure = sample_ms[str(batch)]
        print(f"| sampling, batch {batch}, f32 (ms/step) | {figure:.2f} |", flush=True)

    if args.json:
        result = {
            "config": args.config,
            "parameters": parameters,
            "threads": args.threads,
            "precision": precision.value,
            "train_batch": args.batch,
            "train_img_per_s": img_per_s,
            "sample_ms_per_step": sample_ms,
            "torch_version": torch.__version__,
        }
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
            out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
