#!/usr/bin/env bash
# Refresh the README screenshots from this project's own MLflow store and DVC plots, with
# headless Chromium (Debian: `apt-get install chromium`). Run after `make repro`:
#
#     make screenshots        # or: bash docs/screenshots.sh
#
# It starts `mlflow ui` on a free port on 127.0.0.1, photographs the experiment page (which
# opens on its training runs), the runs table of the `pipeline` runs sorted by their test
# accuracy with the headline metrics as columns (docs/screenshot_runs.py drives Chromium for
# the columns), and the latest search stage's run page, renders `dvc plots show` to HTML and
# photographs that, then stops the server. Writes docs/images/{mlflow_ui,
# mlflow_runs_by_test_accuracy,mlflow_search_run,dvc_plots}.png.
set -euo pipefail
cd "$(dirname "$0")/.."
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || { echo "screenshots: chromium not found (Debian: apt-get install chromium)" >&2; exit 2; }
[ -f mlflow.db ] || { echo "screenshots: mlflow.db not found; run make repro first" >&2; exit 2; }
PORT=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PROFILE=$(mktemp -d)
mlflow ui --host 127.0.0.1 --port "$PORT" --backend-store-uri "sqlite:///$PWD/mlflow.db" >/dev/null 2>&1 &
SERVER=$!
trap 'pkill -P $SERVER 2>/dev/null; kill $SERVER 2>/dev/null || true; rm -rf "$PROFILE"' EXIT
for _ in $(seq 120); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 1; done

read -r EXPERIMENT RUN < <(python - "$PORT" <<'PY'
import sys
import mlflow
import yaml

client = mlflow.MlflowClient(f"http://127.0.0.1:{sys.argv[1]}")
name = (yaml.safe_load(open("params.yaml")).get("mlflow") or {}).get("experiment", "automl")
experiment = client.get_experiment_by_name(name)
runs = client.search_runs([experiment.experiment_id], "tags.`automl.stage` = 'search'", order_by=["attributes.start_time DESC"], max_results=1)
print(experiment.experiment_id, runs[0].info.run_id)
PY
)

shot() {  # url, output, width, height
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$PROFILE" \
    --window-size="$3,$4" --virtual-time-budget=15000 --screenshot="$2" "$1" >/dev/null 2>&1
  echo "screenshots: wrote $2"
}
mkdir -p docs/images
shot "http://127.0.0.1:$PORT/#/experiments/$EXPERIMENT?workflowType=machine_learning" docs/images/mlflow_ui.png 1500 900
python docs/screenshot_runs.py "$CHROMIUM" "$PORT" "$EXPERIMENT" docs/images/mlflow_runs_by_test_accuracy.png
shot "http://127.0.0.1:$PORT/#/experiments/$EXPERIMENT/runs/$RUN?workflowType=machine_learning" docs/images/mlflow_search_run.png 1500 1100
dvc plots show -o dvc_plots >/dev/null
shot "file://$PWD/dvc_plots/index.html" docs/images/dvc_plots.png 1400 2200
