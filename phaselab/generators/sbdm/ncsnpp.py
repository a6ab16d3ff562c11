"""NCSN++ conditional score network (Song et al. 2021) in plain PyTorch, for p(phase encoding | magnitude).

Follows score_sde_pytorch's ``ncsnpp.py`` with ``resblock_type='biggan'``, ``progressive_input='residual'``,
``progressive='none'``, FIR [1, 3, 3, 1] resampling, Fourier embedding of log sigma and skip rescaling;
the FIR filters are depthwise (transposed) convolutions, so no JIT CUDA extension is needed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

_SKIP = 1 / math.sqrt(2)  # keeps the variance of residual sums constant (skip_rescale)


@dataclass(frozen=True)
class NCSNppConfig:
    """Architecture of :class:`NCSNpp`; defaults are the study's (about 61M parameters at 256x256)."""

    image_size: int = 256
    in_channels: int = 3  # noisy (cos, sin) encoding + magnitude
    out_channels: int = 2  # score of the encoding
    nf: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 2, 2)
    num_res_blocks: int = 4
    attn_resolutions: tuple[int, ...] = (32,)
    dropout: float = 0.0
    fourier_scale: float = 16.0
    progressive_input: bool = True  # residual pyramid of the input at every level
    scale_by_sigma: bool = True  # the study's output / sigma; EDM preconditioning scales outside the net

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


PAPER_NET = NCSNppConfig()
TINY_NET = NCSNppConfig(image_size=16, nf=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(8,))


def _groups(channels: int) -> int:
    return min(channels // 4, 32)


def _zero(module: nn.Module) -> nn.Module:
    # score_sde's init_scale=0: residual branches start (almost) at zero, each block near identity
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class FIRResample(nn.Module):
    """2x up- or downsampling with the separable FIR kernel [1, 3, 3, 1] (upfirdn2d of StyleGAN2)."""

    def __init__(self, up: bool):
        super().__init__()
        k = torch.tensor([1.0, 3.0, 3.0, 1.0])
        k = torch.outer(k, k)
        k = k / k.sum()
        self.up = up
        self.register_buffer("kernel", (4 * k if up else k)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        weight = self.kernel.to(x.dtype).expand(c, 1, 4, 4)
        if self.up:
            return F.conv_transpose2d(x, weight, stride=2, padding=1, groups=c)
        return F.conv2d(x, weight, stride=2, padding=1, groups=c)


class GaussianFourierProjection(nn.Module):
    """Random Fourier features of log sigma; the frequencies are fixed (a buffer, saved with the model)."""

    def __init__(self, size: int, scale: float):
        super().__init__()
        self.register_buffer("W", torch.randn(size) * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = x[:, None] * self.W[None, :] * (2 * math.pi)
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


class ResnetBlockBigGAN(nn.Module):
    """GroupNorm-SiLU-conv twice, noise embedding added in between, optional FIR up/down, skip / sqrt 2."""

    def __init__(self, in_ch: int, out_ch: int, temb_dim: int, dropout: float, up=False, down=False):
        super().__init__()
        self.norm0 = nn.GroupNorm(_groups(in_ch), in_ch, eps=1e-6)
        self.conv0 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.dense = nn.Linear(temb_dim, out_ch)
        nn.init.zeros_(self.dense.bias)
        self.norm1 = nn.GroupNorm(_groups(out_ch), out_ch, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = _zero(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.resample = FIRResample(up=True) if up else FIRResample(up=False) if down else None
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if (in_ch != out_ch or up or down) else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm0(x))
        if self.resample is not None:
            h, x = self.resample(h), self.resample(x)
        h = self.conv0(h) + self.dense(F.silu(temb))[:, :, None, None]
        h = self.conv1(self.dropout(F.silu(self.norm1(h))))
        if self.skip is not None:
            x = self.skip(x)
        return (x + h) * _SKIP


class AttnBlock(nn.Module):
    """Single-head self-attention over pixels (score_sde's AttnBlockpp), skip / sqrt 2."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels, eps=1e-6)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
        a = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return (x + self.out(a.transpose(-1, -2).reshape(b, c, h, w))) * _SKIP


class NCSNpp(nn.Module):
    """Network F(x, sigma) for x (B, in_channels, H, W), sigma (B,): the score s = F / sigma as published
    (``scale_by_sigma``), or the raw F that EDM preconditioning wraps (see ``sde.Preconditioning``)."""

    def __init__(self, config: NCSNppConfig = PAPER_NET):
        super().__init__()
        self.config = cfg = config
        n_levels = len(cfg.ch_mult)
        if cfg.image_size % 2 ** (n_levels - 1):
            raise ValueError(f"image_size {cfg.image_size} is not divisible by 2**{n_levels - 1}")
        resolutions = [cfg.image_size // 2**i for i in range(n_levels)]
        temb_dim = 4 * cfg.nf
        self.fourier = GaussianFourierProjection(cfg.nf, cfg.fourier_scale)
        self.temb = nn.Sequential(nn.Linear(2 * cfg.nf, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim))

        def block(i: int, o: int, **kw) -> ResnetBlockBigGAN:
            return ResnetBlockBigGAN(i, o, temb_dim, cfg.dropout, **kw)

        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.nf, 3, padding=1)
        # encoder entries run in order; those flagged in _down_skip also feed the decoder's skip inputs
        self.down: nn.ModuleList = nn.ModuleList()
        self._down_kinds: list[str] = []
        self._down_skip: list[bool] = []

        def add(kind: str, module: nn.Module) -> None:
            self.down.append(module)
            self._down_kinds.append(kind)
            self._down_skip.append(False)

        skips, ch, pyramid_ch = [cfg.nf], cfg.nf, cfg.in_channels
        for level, res in enumerate(resolutions):
            out = cfg.nf * cfg.ch_mult[level]
            for _ in range(cfg.num_res_blocks):
                add("res", block(ch, out))
                ch = out
                if res in cfg.attn_resolutions:
                    add("attn", AttnBlock(ch))
                self._down_skip[-1] = True
                skips.append(ch)
            if level != n_levels - 1:
                add("down", block(ch, ch, down=True))
                if cfg.progressive_input:
                    pyramid = nn.Sequential(FIRResample(up=False), nn.Conv2d(pyramid_ch, ch, 3, padding=1))
                    add("pyramid", pyramid)
                    pyramid_ch = ch
                self._down_skip[-1] = True
                skips.append(ch)
        self.mid = nn.ModuleList([block(ch, ch), AttnBlock(ch), block(ch, ch)])
        self.up: nn.ModuleList = nn.ModuleList()
        self._up_kinds: list[str] = []
        for level in reversed(range(n_levels)):
            out = cfg.nf * cfg.ch_mult[level]
            for _ in range(cfg.num_res_blocks + 1):
                self.up.append(block(ch + skips.pop(), out))
                self._up_kinds.append("res")
                ch = out
            if resolutions[level] in cfg.attn_resolutions:
                self.up.append(AttnBlock(ch))
                self._up_kinds.append("attn")
            if level != 0:
                self.up.append(block(ch, ch, up=True))
                self._up_kinds.append("up")
        assert not skips
        self.norm_out = nn.GroupNorm(_groups(ch), ch, eps=1e-6)
        self.conv_out = _zero(nn.Conv2d(ch, cfg.out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        levels = len(self.config.ch_mult) - 1
        if x.shape[-1] % 2**levels or x.shape[-2] % 2**levels:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not divisible by 2**{levels}")
        temb = self.temb(self.fourier(torch.log(sigma)))
        pyramid = x
        h = self.conv_in(x)
        hs = [h]
        for kind, module, is_skip in zip(self._down_kinds, self.down, self._down_skip, strict=True):
            if kind == "attn":
                h = module(h)
            elif kind == "pyramid":
                pyramid = module(pyramid)
                h = pyramid = (pyramid + h) * _SKIP
            else:
                h = module(h, temb)
            if is_skip:
                hs.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, temb)), temb)
        for kind, module in zip(self._up_kinds, self.up, strict=True):
            if kind == "res":
                h = module(torch.cat([h, hs.pop()], dim=1), temb)
            elif kind == "attn":
                h = module(h)
            else:
                h = module(h, temb)
        assert not hs
        h = self.conv_out(F.silu(self.norm_out(h)))
        if self.config.scale_by_sigma:
            h = h / sigma.to(h.dtype)[:, None, None, None]
        return h
