"""Fold BatchNorm into the preceding Conv2d (or Linear) for inference.

The math is PyTorch's own `torch.nn.utils.fusion`; this module only finds the pairs. The
model builder puts every conv and its norm side by side in an `nn.Sequential`, wherever it
occurs (plain stacks, residual branches, projections), so walking every Sequential finds all
of them; a folded norm becomes `nn.Identity`. Group and layer norms depend on the input and
cannot be folded; the report says how many were left. Batch norms with a frozen scale
(`batch_no_scale`) are batch norms and fold the same way.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

FOLDABLE = ((nn.Conv2d, nn.BatchNorm2d, fuse_conv_bn_eval), (nn.Linear, nn.BatchNorm1d, fuse_linear_bn_eval))


@dataclass
class FusionReport:
    folded: int = 0
    left: dict[str, int] = field(default_factory=dict)


def fuse_model(model: nn.Module) -> tuple[nn.Module, FusionReport]:
    """A fused copy of `model` in eval mode; the original is untouched."""
    fused = copy.deepcopy(model).eval()
    report = FusionReport()
    for module in fused.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            a, b = module._modules[first], module._modules[second]
            for layer_type, norm_type, fold in FOLDABLE:
                if type(a) is layer_type and isinstance(b, norm_type) and b.track_running_stats:
                    module._modules[first] = fold(a, b)
                    module._modules[second] = nn.Identity()
                    report.folded += 1
    for module in fused.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            kind = type(module).__name__
            report.left[kind] = report.left.get(kind, 0) + 1
    return fused, report
