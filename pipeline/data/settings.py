"""The `data:` section: which dataset, how it is split, where a user's images come from."""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, model_validator

from pipeline.data.sources import DATASETS, is_archive, is_url
from pipeline.validation import Between, Number, OneOf, Section, fail


class DataSettings(Section):
    dataset: Annotated[str, OneOf(DATASETS)] = Field("digits", description="a built-in dataset, or imagefolder")
    val_fraction: Annotated[Number, Between(0.01, 0.8)] = Field(0.15, description="share of the data for validation")
    test_fraction: Annotated[Number, Between(0.01, 0.8)] = Field(
        0.2, description="share for the test split; ignored for datasets with an official test split")
    source: str = Field("", description="imagefolder: a directory, a .tar/.tar.gz/.zip archive, or an https:// or file:// URL")
    sha256: str = Field("", description="required for archives and URLs")
    image_size: Annotated[int, Between(0, 4096)] = Field(
        0, description="resize to a square of this side; 0 = keep (all images must match)")
    max_samples: Annotated[int, Between(0, 10**9)] = Field(
        0, description="a stratified subset of at most this many images; 0 = all")

    @model_validator(mode="after")
    def _consistent(self):
        if self.val_fraction + self.test_fraction >= 0.9:
            raise fail("val_fraction + test_fraction must be below 0.9 to leave data to train on")
        if self.dataset == "imagefolder" and not self.source:
            raise fail("required for dataset 'imagefolder' (a directory, archive or URL)", "source")
        if self.sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", self.sha256):
            raise fail(f"expected 64 hexadecimal digits, got '{self.sha256}'", "sha256")
        if self.dataset == "imagefolder" and (is_url(self.source) or is_archive(self.source)) and not self.sha256:
            raise fail(f"required for the archive or URL '{self.source}'", "sha256")
        return self
