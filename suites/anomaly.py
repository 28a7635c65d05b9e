"""Visual anomaly detection on inspection lines: the models industrial users run, on inputs shaped
like the data sets they represent. Builders are import paths; torch is imported only in the worker."""

from __future__ import annotations

from suites.base import Suite, Workload

__all__ = ["SUITE"]

_MVTEC = "MVTec AD"

SUITE = Suite(
    name="anomaly",
    description="Visual anomaly detection (MVTec AD-like inspection images)",
    workloads=(
        Workload(
            name="efficientad_s",
            family="EfficientAD",
            builder="suites.models.efficientad:build_efficientad_s",
            input_shape=(3, 256, 256),
            dataset=_MVTEC,
            preprocessing="resize to 256x256; ImageNet normalisation inside the model (as anomalib)",
            latency_tier_ms=20,
            licence="Apache-2.0 (anomalib reference implementation)",
            reference="Batzner et al., EfficientAD, WACV 2024; anomalib efficient_ad",
            description="PDN-S teacher, student and autoencoder; anomaly map and image score",
        ),
    ),
)
