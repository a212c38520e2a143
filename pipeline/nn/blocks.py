"""Named building blocks: normalizations, activations, attention, conv blocks.

Every choice a genome can name is resolved through one of the tables here (`NORMS`,
`ACTIVATIONS`, `ATTENTION`), so the search space and the model builder cannot drift apart:
a test checks that every name the space offers resolves and every entry is offered.
Normalization sits after the conv and before the activation.
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import SqueezeExcitation


def group_count(channels: int, most: int = 8) -> int:
    """The largest group count <= `most` that divides `channels` (GroupNorm needs a divisor)."""
    return max(g for g in range(1, most + 1) if channels % g == 0)


def layer_norm_2d(channels: int) -> nn.Module:
    """Layer norm for conv maps: normalize over channels *and* space, per sample.

    `nn.GroupNorm(1, C)` does exactly that (one group = all of C, H, W) with a per-channel
    affine, and, unlike `nn.LayerNorm`, it does not need the spatial size up front or a
    channels-last permute. Like group norm it does not depend on the batch, so it works with
    batch sizes down to 1 where batch norm's statistics become noise.
    """
    return nn.GroupNorm(1, channels)


class BatchNormNoScale(nn.BatchNorm2d):
    """The speed runs' batch norm (airbench): a learnable shift but the scale frozen at 1
    (the next conv can rescale), running statistics that follow the batches quickly
    (PyTorch momentum 0.4, airbench's 0.6 in its convention) and a negligible epsilon.
    It is still a BatchNorm2d, so `fuse` folds it into the conv before it."""

    def __init__(self, channels: int):
        super().__init__(channels, eps=1e-12, momentum=0.4)
        self.weight.requires_grad_(False)


NORMS = {
    "batch": nn.BatchNorm2d,
    "batch_no_scale": BatchNormNoScale,
    "group": lambda c: nn.GroupNorm(group_count(c), c),
    "layer": layer_norm_2d,
    "none": lambda c: nn.Identity(),
}

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "gelu": nn.GELU,
    "silu": lambda: nn.SiLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.1, inplace=True),
}


class ChannelSpatialAttention(nn.Module):
    """CBAM (Woo et al. 2018): channel attention from avg+max pooled descriptors through a
    shared MLP, then spatial attention from a 7x7 conv over the channel-wise avg and max."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(4, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        mx = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        x = x * torch.sigmoid(avg + mx)
        maps = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(maps))


class SpatialSelfAttention(nn.Module):
    """Multi-head self-attention over spatial positions, kept affordable at any resolution.

    Queries are every position; keys and values come from the map average-pooled to at most
    `max_side` x `max_side`, so the cost is O(HW * max_side^2) rather than O((HW)^2).
    Pre-norm with a residual add, as in a transformer block.
    """

    def __init__(self, channels: int, max_side: int = 8):
        super().__init__()
        heads = max(h for h in (4, 2, 1) if channels % h == 0)
        self.norm = nn.LayerNorm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.pool = nn.AdaptiveAvgPool2d(max_side)
        self.max_side = max_side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        queries = self.norm(x.flatten(2).transpose(1, 2))
        if h * w > self.max_side**2:
            keys = self.norm(self.pool(x).flatten(2).transpose(1, 2))
        else:
            keys = queries
        out, _ = self.attn(queries, keys, keys, need_weights=False)
        return x + out.transpose(1, 2).reshape(n, c, h, w)


ATTENTION = {
    "none": lambda c: nn.Identity(),
    "se": lambda c: SqueezeExcitation(c, max(4, c // 4)),
    "self": SpatialSelfAttention,
    "cbam": ChannelSpatialAttention,
}


class PatchWhitening(nn.Conv2d):
    """A frozen 2x2 convolution whose filters whiten the training images' 2x2 patches
    (airbench, after Tysam's hlb-CIFAR10): the eigenvectors of the patch covariance scaled
    by 1/sqrt(eigenvalue + eps), and their negatives, so the next activation sees both
    signs. `initialise` sets them from training images; until then it is a plain conv.
    The bias stays trainable; the filters are not trained."""

    patch = 2

    def __init__(self, channels: int, eps: float = 5e-4):
        width = 2 * channels * self.patch**2
        super().__init__(channels, width, self.patch, padding=0, bias=True)
        self.weight.requires_grad_(False)
        self.eps = eps

    @torch.no_grad()
    def initialise(self, images: torch.Tensor) -> None:
        """Set the filters from `images` (N, C, H, W), already normalized as the layer sees them."""
        patches = images.float().unfold(2, self.patch, 1).unfold(3, self.patch, 1)  # N C H' W' p p
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, self.in_channels * self.patch**2).double()
        eigenvalues, eigenvectors = torch.linalg.eigh(torch.cov(patches.T))
        filters = (eigenvectors.T / torch.sqrt(eigenvalues + self.eps)[:, None]).flip(0)  # largest variance first
        filters = filters.reshape(-1, self.in_channels, self.patch, self.patch).to(self.weight.dtype)
        self.weight.copy_(torch.cat([filters, -filters]))
        self.bias.zero_()


def conv_norm(cin: int, cout: int, kernel: int, stride: int, padding: int, norm: str) -> nn.Sequential:
    """Conv followed by its normalization, as one Sequential so fusion finds the pair."""
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=norm == "none")
    return nn.Sequential(conv, NORMS[norm](cout))


class PlainBlock(nn.Sequential):
    """conv -> norm -> activation -> attention."""

    def __init__(self, cin, cout, kernel, stride, padding, norm, activation, attention):
        super().__init__(
            conv_norm(cin, cout, kernel, stride, padding, norm), ACTIVATIONS[activation](), ATTENTION[attention](cout)
        )


class ResidualBlock(nn.Module):
    """A basic residual block: two conv-norms with an activation between, attention on the
    branch, then add the shortcut and activate. The shortcut is a 1x1 conv-norm projection
    when channels or stride change, and is centre-cropped when `valid` padding shrinks the
    branch, so the sum is always defined."""

    def __init__(self, cin, cout, kernel, stride, padding, norm, activation, attention):
        super().__init__()
        self.branch = nn.Sequential(
            conv_norm(cin, cout, kernel, stride, padding, norm),
            ACTIVATIONS[activation](),
            conv_norm(cout, cout, kernel, 1, kernel // 2, norm),
            ATTENTION[attention](cout),
        )
        needs_projection = cin != cout or stride != 1
        self.shortcut = conv_norm(cin, cout, 1, stride, 0, norm) if needs_projection else nn.Identity()
        self.act = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        skip = self.shortcut(x)
        dh, dw = skip.shape[2] - out.shape[2], skip.shape[3] - out.shape[3]
        if dh or dw:
            skip = skip[:, :, dh // 2 : dh // 2 + out.shape[2], dw // 2 : dw // 2 + out.shape[3]]
        return self.act(out + skip)


def downsample(kind: str, channels: int, norm: str, activation: str) -> nn.Module:
    """Halve the size and keep the channel count (pooling never changes channels)."""
    if kind == "max":
        return nn.MaxPool2d(2, 2)
    if kind == "avg":
        return nn.AvgPool2d(2, 2)
    return nn.Sequential(conv_norm(channels, channels, 3, 2, 1, norm), ACTIVATIONS[activation]())


#: Downsampling geometry per pooling choice: (kernel, stride, padding) for the size formula.
POOLING = {"max": (2, 2, 0), "avg": (2, 2, 0), "none": (3, 2, 1)}

HEADS = {
    "avg": lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
    "max": lambda: nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten()),
    "flatten": nn.Flatten,
}
