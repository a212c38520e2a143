"""The candidate trainer: `fit` (whole splits as tensors on the device, no DataLoader),
optimizers and schedules by name, the fourteen losses, and batch augmentation."""
