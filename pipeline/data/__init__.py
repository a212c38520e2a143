"""Data: the prepared-data types, preparation and splits, the `data:` settings, and the
sources (the embedded digits, torchvision's datasets, the user's image folders)."""
