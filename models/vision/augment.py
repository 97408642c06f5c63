"""On-the-fly augmentation of whole MNIST batches (tensors on the training device, no data loader).

Goal: after the app's preprocessing (crop to ink, fit 20×20, centre of mass), a phone photo, a
printed digit or a thick canvas stroke should look like something the network has seen. Every op
below works on a (B, 1, 28, 28) float batch in [0, 1] and picks its random strength per sample:

- random affine: scale (down to 0.75, slightly anisotropic), rotation, shear, translation
- stroke thickness: grey dilation / erosion with the max-pool trick
- blur, contrast and brightness changes, Gaussian noise
- JPEG-like artefacts: 8×8 block DCT with random coarse quantisation

Polarity is not augmented: preprocessing always maps ink to bright-on-dark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    rotate_deg: float = 15.0
    shear: float = 0.25  # tan of the shear angle
    scale: tuple[float, float] = (0.75, 1.12)
    aspect: float = 0.12  # extra independent x/y scale jitter (±)
    translate_px: float = 2.5
    p_affine: float = 0.9
    p_dilate: float = 0.35  # thicker strokes (bold print, canvas brushes)
    p_erode: float = 0.10  # thinner strokes (fine pens)
    p_blur: float = 0.25
    p_contrast: float = 0.35
    p_noise: float = 0.30
    noise_std: float = 0.08
    p_jpeg: float = 0.20


def _per_sample(batch: int, p: float, generator: torch.Generator | None, device) -> torch.Tensor:
    return (torch.rand(batch, generator=generator, device=device) < p).view(batch, 1, 1, 1)


def _uniform(batch: int, low: float, high: float, generator, device) -> torch.Tensor:
    return torch.rand(batch, generator=generator, device=device) * (high - low) + low


def random_affine(x: torch.Tensor, cfg: AugmentConfig, generator=None) -> torch.Tensor:
    b, device = x.shape[0], x.device
    angle = _uniform(b, -cfg.rotate_deg, cfg.rotate_deg, generator, device) * math.pi / 180
    shear = _uniform(b, -cfg.shear, cfg.shear, generator, device)
    scale = _uniform(b, *cfg.scale, generator, device)
    sx = scale * _uniform(b, 1 - cfg.aspect, 1 + cfg.aspect, generator, device)
    sy = scale * _uniform(b, 1 - cfg.aspect, 1 + cfg.aspect, generator, device)
    # affine_grid maps output coords to input coords (normalised to [-1, 1]); the inverse of the
    # forward transform "scale, then shear, then rotate": A^-1 = S^-1 H^-1 R^-1.
    cos, sin = torch.cos(angle), torch.sin(angle)
    r_inv = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # (B, 2, 2)
    zeros, ones = torch.zeros_like(shear), torch.ones_like(shear)
    h_inv = torch.stack([torch.stack([ones, -shear], -1), torch.stack([zeros, ones], -1)], -2)
    s_inv = torch.diag_embed(torch.stack([1 / sx, 1 / sy], -1))
    linear = s_inv @ h_inv @ r_inv
    shift = _uniform(b * 2, -cfg.translate_px, cfg.translate_px, generator, device).view(b, 2) * (2 / 28)
    theta = torch.cat([linear, (-linear @ shift.unsqueeze(-1))], dim=-1)  # (B, 2, 3)
    keep = torch.rand(b, generator=generator, device=device) >= cfg.p_affine
    theta[keep] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], device=device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def dilate(x: torch.Tensor, k: int) -> torch.Tensor:
    """Grey dilation with a k×k square (the max-pool trick); even k shifts by half a pixel."""
    pad = (k // 2, (k - 1) // 2, k // 2, (k - 1) // 2)
    return F.max_pool2d(F.pad(x, pad), k, stride=1)


def erode(x: torch.Tensor, k: int) -> torch.Tensor:
    return -dilate(-x, k)


def thickness(x: torch.Tensor, cfg: AugmentConfig, generator=None) -> torch.Tensor:
    b, device = x.shape[0], x.device
    u = torch.rand(b, generator=generator, device=device).view(b, 1, 1, 1)
    out = x
    thick2, thick3 = dilate(x, 2), dilate(x, 3)
    out = torch.where(u < cfg.p_dilate * 0.5, thick2, out)
    out = torch.where((u >= cfg.p_dilate * 0.5) & (u < cfg.p_dilate), thick3, out)
    # Soft erosion keeps a little of the original so thin strokes never vanish entirely.
    thin = torch.maximum(erode(x, 2), 0.35 * x)
    out = torch.where((u >= cfg.p_dilate) & (u < cfg.p_dilate + cfg.p_erode), thin, out)
    return out


def _gaussian_kernel(sigma: float, device) -> torch.Tensor:
    radius = 2
    coords = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, 2 * radius + 1, 2 * radius + 1)


def blur(x: torch.Tensor, cfg: AugmentConfig, generator=None) -> torch.Tensor:
    b, device = x.shape[0], x.device
    blurred = F.conv2d(x, _gaussian_kernel(1.0, device), padding=2)
    alpha = _uniform(b, 0.3, 1.0, generator, device).view(b, 1, 1, 1)  # blur amount per sample
    mixed = x + alpha * (blurred - x)
    return torch.where(_per_sample(b, cfg.p_blur, generator, device), mixed, x)


def photometric(x: torch.Tensor, cfg: AugmentConfig, generator=None) -> torch.Tensor:
    b, device = x.shape[0], x.device
    gain = _uniform(b, 0.55, 1.0, generator, device).view(b, 1, 1, 1)
    floor = _uniform(b, 0.0, 0.15, generator, device).view(b, 1, 1, 1)
    gamma = _uniform(b, 0.7, 1.4, generator, device).view(b, 1, 1, 1)
    adjusted = floor + (gain - floor) * x.clamp(0, 1).pow(gamma)
    out = torch.where(_per_sample(b, cfg.p_contrast, generator, device), adjusted, x)
    sigma = _uniform(b, 0.0, cfg.noise_std, generator, device).view(b, 1, 1, 1)
    noisy = out + sigma * torch.randn(x.shape, generator=generator, device=device)
    out = torch.where(_per_sample(b, cfg.p_noise, generator, device), noisy, out)
    return out.clamp(0, 1)


def _dct_matrix(n: int, device) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float32, device=device)
    m = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m  # orthonormal DCT-II


def jpeg_like(x: torch.Tensor, cfg: AugmentConfig, generator=None) -> torch.Tensor:
    """Quantise 8×8 DCT blocks coarsely (more at high frequencies), as a JPEG encoder would."""
    b, device = x.shape[0], x.device
    d = _dct_matrix(8, device)
    padded = F.pad(x, (2, 2, 2, 2))  # 32 × 32 = 4 × 4 blocks
    blocks = padded.view(b, 1, 4, 8, 4, 8).permute(0, 1, 2, 4, 3, 5)  # (B, 1, 4, 4, 8, 8)
    coeffs = d @ blocks @ d.T
    freq = torch.arange(8, device=device, dtype=torch.float32)
    weight = 1 + (freq[:, None] + freq[None, :]) / 3  # coarser steps for high frequencies
    step = _uniform(b, 0.04, 0.18, generator, device).view(b, 1, 1, 1, 1, 1) * weight
    quantised = torch.round(coeffs / step) * step
    restored = (d.T @ quantised @ d).permute(0, 1, 2, 4, 3, 5).reshape(b, 1, 32, 32)[:, :, 2:30, 2:30]
    return torch.where(_per_sample(b, cfg.p_jpeg, generator, device), restored.clamp(0, 1), x)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig | None = None, generator=None) -> torch.Tensor:
    """(B, 1, 28, 28) in [0, 1] → an augmented batch of the same shape."""
    cfg = cfg or AugmentConfig()
    x = thickness(x, cfg, generator)
    x = random_affine(x, cfg, generator)
    x = blur(x, cfg, generator)
    x = photometric(x, cfg, generator)
    x = jpeg_like(x, cfg, generator)
    return x
