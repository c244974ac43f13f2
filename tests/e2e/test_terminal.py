"""The quickstart as a user sees it: `raysweep run` on a 100-column terminal (a pseudo-terminal),
ASHA stopping trials, MLflow on. What Ray prints goes to the sweep's logs, not the screen."""

import re
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fixtures.cli import RaysweepProcess

pytestmark = pytest.mark.slow

ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])")
# what Ray prints of its processes: Train's, and an inline trial's Tune actor (`run_trial`)
RAY_NOISE = ("Traceback", "(TrainController", "(raylet)", "ActorDiedError", "(RayTrainWorker", "(run_trial", "Configuration for experiment")


def screen_lines(raw: str) -> list[str]:
    """Every line the terminal showed, escapes removed, split where the cursor went back."""
    return [line for line in re.split(r"[\r\n]", ANSI.sub("", raw)) if line.strip()]


def test_a_quickstart_sweep_on_a_terminal_shows_a_quiet_table_and_ends_with_the_leaderboard(tmp_path):
    # 4 trials, 3 at a time: the 4th meets ASHA's first rung (grace period 1) with results there
    # already, and the quickstart's seeded 4th configuration is the worst of the four at epoch 1
    args = [
        "run", str(REPO / "search_spaces" / "quickstart.yaml"), "--storage", "results", "--num-samples", "4", "--max-concurrent", "3",
        "--set", "train.epochs=2", "--set", "search.grace_period=1",
    ]
    started = time.monotonic()
    run = RaysweepProcess(args, cwd=tmp_path, env={"COLUMNS": "100", "LINES": "40", "MLFLOW_TRACKING_URI": ""}, tty=(100, 40))
    code = run.wait(300)
    took = time.monotonic() - started
    raw = run.output()
    lines = screen_lines(raw)
    shown = "\n".join(lines)
    assert code == 0, shown[-4000:]
    for noise in RAY_NOISE:
        assert noise not in shown, shown
    wide = [line for line in lines if len(line) > 100]
    assert not wide, wide
    assert "\x1b[" in raw and "A\r\x1b[J" in raw  # the table was redrawn in place
    assert "stopped (asha, epoch 1)" in shown
    assert "TERMINATED" not in shown
    board = lines.index("sweep quickstart (results/quickstart): 4 trial(s), best val/macro_f1 (max) first")
    assert len([line for line in lines[board + 2 : board + 6] if re.match(r"[0-9a-f]{8} ", line)]) == 4
    board_csv = "results/quickstart/leaderboard.csv"
    assert lines[-4:] == [  # where to look next
        "next:",
        f"  {'raysweep ui':{len(board_csv)}}   the MLflow runs, on http://127.0.0.1:5000",
        f"  {board_csv}   every trial, as CSV",
        f"  {'results/quickstart/logs/':{len(board_csv)}}   what Ray, Tune and the trials printed",
    ]
    log = Path(tmp_path, "results", "quickstart", "logs", "driver.log").read_text()
    assert "Configuration for experiment" in log  # Tune's own output went here instead (its trials may print nothing)
    print(f"quickstart on a pty: {took:.0f} s")
