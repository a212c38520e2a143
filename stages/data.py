"""`data` stage: prepare the dataset named in params.yaml into data/prepared/."""
from pipeline.data.prepare import prepare, save_prepared
from pipeline.fileio import write_json
from pipeline.params import Params
from pipeline.tracking.run import StageRun
from stages.outputs import DOWNLOADS, METRICS, PREPARED


def run(params: Params) -> None:
    with StageRun("data", params) as tracking:
        data = prepare(params.data, params.seed, DOWNLOADS)
        save_prepared(data, PREPARED)
        summary = {
            "dataset": params.data.dataset,
            "classes": data.num_classes,
            "input_shape": list(data.input_shape),
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test),
        }
        write_json(METRICS / "data.json", summary)
        tracking.log_params({"dataset": params.data.dataset, "input_shape": data.input_shape})
        tracking.log_dataset(data, params.data)
        tracking.log_metrics({k: v for k, v in summary.items() if isinstance(v, int)})
        print(f"data: {params.data.dataset} {data.input_shape} {data.num_classes} classes; "
              f"train {len(data.train)} / val {len(data.val)} / test {len(data.test)}")
