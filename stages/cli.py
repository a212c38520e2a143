"""`automl`: one subcommand per DVC stage.

A `UserError` (bad params, missing or corrupt file, unreachable tracking server) is printed
as one line and exits with status 2; SIGTERM is turned into KeyboardInterrupt so a stage
stopped by DVC or a scheduler ends its MLflow runs as KILLED instead of leaving them RUNNING.
"""
import signal
import sys

import click

from pipeline.errors import UserError


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _run(stage: str, params_path: str) -> None:
    from pipeline.params import load_params

    signal.signal(signal.SIGTERM, _terminate)
    try:
        params = load_params(params_path)
        module = __import__(f"stages.{stage}", fromlist=["run"])
        module.run(params)
    except UserError as err:
        click.echo(f"automl {stage}: error: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo(f"automl {stage}: interrupted", err=True)
        sys.exit(130)


params_option = click.option(
    "--params", "params_path", default="params.yaml", show_default=True, type=click.Path(dir_okay=False),
    help="The params file to read.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Declarative AutoML for image classifiers: the stages `dvc repro` runs."""


def _stage_command(stage: str, doc: str):
    @params_option
    def command(params_path: str) -> None:
        _run(stage, params_path)

    command.__doc__ = doc
    return main.command(name=stage)(command)


_stage_command("data", "Prepare the dataset into data/prepared/.")
_stage_command("search", "Evolve architectures and recipes; write search/.")
_stage_command("train", "Train search/best.yaml; write models/model.pt.")
_stage_command("fuse", "Fold Conv+BatchNorm; write models/fused.pt.")
_stage_command("evaluate", "Evaluate the fused model on the test split.")

if __name__ == "__main__":
    main()
