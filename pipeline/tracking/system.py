"""System metrics of a stage's run: CPU, memory, disk, network (and GPU where NVML is
present) as `system/...` metrics, through MLflow's own `SystemMetricsMonitor`.

On by default where psutil is installed (DVC depends on it); MLflow's switch
`MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=false` turns it off and
`MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL` sets the seconds between samples (10). MLflow's
monitor drops the samples taken since its last write when it stops, so `stop` takes and
writes a last sample: every stage run has at least one point, however short it was.
"""
from __future__ import annotations

import logging
import os


def enabled() -> bool:
    if os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "").strip().lower() in ("false", "0", "no", "off"):
        return False
    try:
        import psutil  # noqa: F401
    except ImportError:
        return False
    return True


class SystemMetrics:
    """Start with `start()`, stop with `stop()`; does nothing where disabled."""

    def __init__(self, run_id: str, tracking_uri: str):
        self.run_id, self.tracking_uri = run_id, tracking_uri
        self.monitor = None

    def start(self) -> None:
        if not enabled():
            return
        # Its start, stop and "no GPU" notes are INFO lines on stderr; a stage prints its own.
        logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        self.monitor = SystemMetricsMonitor(self.run_id, tracking_uri=self.tracking_uri)
        self.monitor.start()

    def stop(self) -> None:
        monitor, self.monitor = self.monitor, None
        if monitor is None:
            return
        monitor.finish()
        monitor.collect_metrics()
        monitor.publish_metrics(monitor.aggregate_metrics())
        monitor.mlflow_logger.flush()
