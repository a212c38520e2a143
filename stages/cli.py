"""`automl`: one subcommand per DVC stage (`check` first), plus `predict`, `cache` and `schema`.

A `UserError` (bad params, missing or corrupt file, unreachable tracking server) is printed
as one line and exits with status 2; SIGTERM and SIGINT become KeyboardInterrupt (outside MLflow writes) so a stage
stopped by DVC or a scheduler ends its MLflow runs as KILLED instead of leaving them RUNNING.
"""
import sys

import click

from pipeline import interrupts
from pipeline.errors import UserError


def _run(stage: str, params_path: str) -> None:
    from pipeline.params import load_params

    def work():
        params = load_params(params_path)
        module = __import__(f"stages.{stage}", fromlist=["run"])
        module.run(params)

    _guarded(stage, work)


def _guarded(stage: str, work) -> None:
    interrupts.install()
    try:
        work()
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


_stage_command("check", "Validate params.yaml (DVC runs this first: a refused value stops before any output is removed).")
_stage_command("data", "Prepare the dataset into data/prepared/.")
_stage_command("search", "Evolve architectures and recipes; write search/.")
_stage_command("train", "Train search/best.yaml; write models/model.pt.")
_stage_command("fuse", "Fold Conv+BatchNorm; write models/fused.pt.")
@main.command(name="evaluate")
@params_option
@click.option("--model", "model_path", type=str, default=None,
              help="Evaluate this model instead (fused.pt, model.pt, .onnx, .pt2 or .torchscript.pt).")
@click.option("--data", "data_source", type=str, default=None,
              help="A dataset name, or an image folder: directory, archive or URL (with --sha256).")
@click.option("--sha256", default="", help="Checksum of the --data archive or URL.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write the report JSON (and an error grid PNG).")
def evaluate(params_path: str, model_path, data_source, sha256, out) -> None:
    """Evaluate the fused model on the test split, or --model on --data."""
    if model_path is None and data_source is None:
        _run("evaluate", params_path)
        return
    if not model_path or not data_source:
        raise click.UsageError("--model and --data go together")
    _guarded("evaluate", lambda: __import__("stages.evaluate", fromlist=["x"]).evaluate_any(model_path, data_source, sha256, out))

@main.command(name="predict")
@click.option("--model", "model_path", required=True, help="fused.pt, model.pt or an export (.onnx, .pt2, .torchscript.pt).")
@click.option("--images", multiple=True,
              help="An image file, a folder of images (searched recursively), an archive or a URL; repeatable.")
@click.option("--sha256", default="", help="Checksum of the --images archive or URL.")
@click.option("--out", default="predictions.csv", show_default=True, type=click.Path(dir_okay=False),
              help="The CSV to write: one row per image file.")
@click.option("--top-k", default=1, show_default=True, type=click.IntRange(1, 100), help="Classes per image.")
@click.argument("paths", nargs=-1, metavar="[IMAGES]...")
def predict(model_path, images, sha256, out, top_k, paths) -> None:
    """Classify new, unlabelled images: predicted class and probability per file. Images
    come from --images and from the paths after the options (`photos/*.jpg`)."""
    sources = [*images, *paths]
    if not sources:
        raise click.UsageError("--images: required (an image file, a folder, an archive or a URL)")
    _guarded("predict", lambda: __import__("stages.predict", fromlist=["x"]).predict(model_path, sources, sha256, out, top_k))


@main.group(name="cache")
def cache() -> None:
    """The candidate store every search of this project shares (.automl/store)."""


@cache.command(name="info")
def cache_info() -> None:
    """Where the store is, how many results it holds and their size."""
    from pipeline.search.store import store_info
    from stages.outputs import store_dir

    info = store_info(store_dir())
    stray = f", {info.stray} temporary files of interrupted writes" if info.stray else ""
    click.echo(f"{info.root}: {info.entries} results, {info.bytes / 1e6:.2f} MB{stray}")


@cache.command(name="clear")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def cache_clear(yes: bool) -> None:
    """Delete every stored result (later searches train everything again)."""
    from pipeline.search.store import clear_store, store_info
    from stages.outputs import store_dir

    root = store_dir()
    if not yes and store_info(root).entries and not click.confirm(f"delete {store_info(root).entries} results in {root}?"):
        raise click.Abort()
    info = clear_store(root)
    click.echo(f"{root}: deleted {info.entries} results ({info.bytes / 1e6:.2f} MB)")


@main.command(name="schema")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write it to this file instead of stdout.")
def schema(out) -> None:
    """Print the JSON Schema of params.yaml (for editors; see params.schema.json)."""
    from pipeline.fileio import write_text
    from pipeline.params import schema_text

    if out:
        write_text(out, schema_text())
    else:
        click.echo(schema_text(), nl=False)


def run_cli() -> None:
    """The console entry point: click's usage errors become one line and status 2, like
    every other user error of this tool."""
    try:
        main(prog_name="automl", standalone_mode=False)
    except click.UsageError as err:
        name = err.ctx.info_name if err.ctx else None
        where = "automl" if name in (None, "automl", "cli", "main") else f"automl {name}"
        click.echo(f"{where}: error: {err.format_message()} (see --help)", err=True)
        sys.exit(2)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except click.Abort:
        click.echo("automl: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    run_cli()
