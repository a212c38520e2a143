"""`check` stage: validate the whole params.yaml before any stage that reads it runs.

DVC removes a stage's outputs before it runs the stage's command, so a value the stage
then refuses would cost the last good results. `check` lists every key the other stages
list and every stage depends on its output, whose content never changes: DVC runs it
first whenever a listed key changes, stops there if params.yaml is refused, and otherwise
reruns only what the edit reaches, as before.
"""
from pipeline.fileio import write_text
from pipeline.params import Params
from stages.outputs import CHECKED

TEXT = "params.yaml was accepted by `automl check`; every stage depends on this file (see stages/check.py)\n"


def run(params: Params) -> None:
    write_text(CHECKED, TEXT)
