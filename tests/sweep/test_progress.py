"""The live view of a sweep, without Ray: fake trials, a terminal that is a string."""

import io
import pickle
import re
from types import SimpleNamespace

import pytest

from raysweep.sweep.progress import Progress, TrialLine
from raysweep.terminal import Console, Terminal

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
QUICKSTART = ["loss.name", "loss.gamma", "loss.label_smoothing", "optimizer.lr", "optimizer.weight_decay", "train.batch_size"]


def visible_lines(text: str) -> list[str]:
    return [line for line in re.split(r"[\r\n]", ANSI.sub("", text)) if line]


def test_many_long_parameters_fit_in_100_columns_under_their_short_names():
    dims = [f"model.backbone.stage_{i}.some_rather_long_parameter_name" for i in range(15)] + ["optimizer.lr", "data.fold"]
    progress = Progress(dims, "val/a_long_metric_name_of_the_sweep", "max", 100, total=400, rule="hyperband")
    lines = [
        TrialLine(f"trial_{i:05d}", status, {d: f"value-{i}-{'x' * 30}" if "stage" in d else 0.000123 * (i + 1) for d in dims}, 37, 0.5 + i / 100)
        for i, status in enumerate(["RUNNING", "TERMINATED", "ERROR", "PENDING", "TERMINATED"])
    ]
    table = progress.table(lines, 100)
    assert max(map(len, table)) <= 100
    assert "stopped (hyperband, epoch 37)" in table[2] and "failed" in table[3]
    assert "some_rather_long_parameter_name" not in table[0]  # cut to fit, or left out
    assert table[-1].startswith("(") and "left out for width" in table[-1]
    assert max(map(len, [progress.summary(lines), progress.ended_line(lines[1], lines)])) <= 100


def test_only_parameters_that_differ_are_shown_by_their_leaf():
    progress = Progress(QUICKSTART + ["optimizer.name"], "val/macro_f1", "max", 12, total=8, rule="asha")
    same = {"loss.name": "ce", "loss.gamma": None, "loss.label_smoothing": 0.1, "optimizer.weight_decay": 1e-4, "train.batch_size": 32, "optimizer.name": "sgd"}
    lines = [TrialLine("a", "TERMINATED", {**same, "optimizer.lr": 0.1}, 12, 0.9), TrialLine("b", "RUNNING", {**same, "optimizer.lr": 0.02}, 3, 0.5)]
    header = progress.table(lines)[0].split()
    assert header == ["trial", "status", "lr", "epoch", "macro_f1"]
    assert progress.table(lines)[1].split()[1] == "finished"
    assert progress.summary(lines) == "1/8 done, 1 running; best val/macro_f1 0.9 (a)"


def test_a_long_sweep_shows_the_running_and_the_best_trials_and_counts_the_rest():
    progress = Progress(["optimizer.lr"], "loss", "min", 10, total=50)
    lines = [TrialLine(f"t{i:02d}", "TERMINATED", {"optimizer.lr": i / 100}, 10, 1.0 + i) for i in range(40)]
    lines += [TrialLine("r", "RUNNING", {"optimizer.lr": 0.5}, 2, 9.0)]
    table = progress.table(lines, 100, max_rows=5)
    assert [row.split()[0] for row in table[1:6]] == ["t00", "t01", "t02", "t03", "r"]
    assert table[-1] == "(36 more trial(s) not shown)"


# -- the Tune callback, on fake trials --------------------------------------------------------


def trial(trial_id, status="RUNNING", epoch=None, lr=0.1, error_file=None):
    return SimpleNamespace(
        trial_id=trial_id, status=status, config={"optimizer.lr": lr, "loss.name": "ce"},
        last_result={"epoch": epoch} if epoch else {}, error_file=error_file,
    )


def make_table(tty: bool, tmp_path=None):
    from raysweep.sweep.callbacks import ProgressTable

    out = io.StringIO()
    console = Console(Terminal(out, tty=tty, width=100, height=40), str(tmp_path) if tmp_path else None)
    return ProgressTable(["optimizer.lr", "loss.name"], "val/f1", "max", 4, total=8, rule="asha", every_s=30.0, out=console), out


def test_on_a_terminal_the_table_is_redrawn_in_place_at_most_once_a_second_and_when_a_trial_ends():
    table, out = make_table(tty=True)
    trials = [trial("t1"), trial("t2", lr=0.2)]
    table.on_trial_start(0, trials, trials[0])
    # Tune calls the callbacks before it updates trial.last_result
    table.on_trial_result(1, trials, trials[0], {"epoch": 1, "val/f1": 0.5})  # within the second: not drawn
    assert out.getvalue().count("done") == 1
    table.on_trial_complete(2, trials, trials[0])  # a trial ended: drawn at once
    text = out.getvalue()
    assert text.count("done") == 2 and "\x1b[4A\r\x1b[J" in text  # up over the block just drawn
    last = visible_lines(text.rsplit("\x1b[J", 1)[1])
    assert last[0] == "1/8 done, 1 running; best val/f1 0.5 (t1)"
    assert last[2].split()[:2] == ["t1", "stopped"] and "(asha, epoch 1)" in last[2]
    assert max(map(len, visible_lines(text))) <= 100


def test_elsewhere_it_prints_plain_lines_only_when_something_changed():
    table, out = make_table(tty=False)
    trials = [trial("t1"), trial("t2", lr=0.2)]
    table.on_trial_start(0, trials, trials[0])  # the first summary
    table.on_trial_start(1, trials, trials[1])  # within every_s: not yet
    table._drawn_at = float("-inf")  # as if every_s had passed
    table.on_step_end(2, trials)  # the same summary: not again
    trials[1].last_result = {"epoch": 4, "val/f1": 0.7}
    table.on_trial_result(3, trials, trials[1], trials[1].last_result)
    table.on_trial_complete(4, trials, trials[1])
    table.on_experiment_end(trials)
    assert out.getvalue().splitlines() == [
        "0/8 done, 2 running",
        "[1/8] trial t2 finished, best val/f1 0.7",
        "1/8 done, 1 running; best val/f1 0.7 (t2)",
    ]


def test_a_failed_trial_is_one_line_and_where_its_trace_is(tmp_path):
    error = tmp_path / "error.txt"
    error.write_text("Traceback (most recent call last):\n  File x\nValueError: the loss became NaN\n")
    table, out = make_table(tty=False, tmp_path=tmp_path / "logs")
    (tmp_path / "logs").mkdir()
    trials = [trial("t1", error_file=str(error))]
    table.on_trial_error(0, trials, trials[0])
    lines = out.getvalue().splitlines()
    assert lines[0] == "trial t1 failed: ValueError: the loss became NaN"
    assert lines[1].startswith("  full trace: ") and lines[1].endswith("trial-t1.error.txt")
    assert (tmp_path / "logs" / "trial-t1.error.txt").read_text() == error.read_text()
    assert "Traceback" not in out.getvalue()


def test_a_resumed_sweeps_restored_trials_show_their_best_as_tune_kept_it():
    table, out = make_table(tty=False)
    done = trial("t1", status="TERMINATED", epoch=4)
    done.metric_analysis = {"val/f1": {"max": 0.8, "min": 0.2, "last": 0.7}}
    table.on_experiment_end([done])
    assert out.getvalue() == "1/8 done, 0 running; best val/f1 0.8 (t1)\n"


def test_the_table_pickles_without_its_terminal_and_reads_an_earlier_raysweeps_pickle():
    table, _ = make_table(tty=True)
    table._best["t1"] = 0.5
    restored = pickle.loads(pickle.dumps(table))
    assert restored.out is None and restored._best == {"t1": 0.5} and restored.progress.total == 8

    from raysweep.sweep.callbacks import ProgressTable

    old = ProgressTable.__new__(ProgressTable)
    old.__setstate__({"dims": ["optimizer.lr"], "metric": "val/f1", "mode": "max", "epochs": 4, "every_s": 15.0, "out": None, "_last": 0.0, "_best": {}})
    old.setup(total_num_samples=8)
    assert (old.progress.total, old.progress.epochs, old.out) == (8, 4, None)


@pytest.fixture(autouse=True)
def _wide(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)


def test_on_resume_the_console_tells_a_restored_table_the_sweeps_count_rule_and_epochs():
    from raysweep.sweep.callbacks import ProgressTable

    old = ProgressTable.__new__(ProgressTable)  # as an earlier raysweep pickled it
    old.__setstate__({"dims": ["optimizer.lr"], "metric": "val/f1", "mode": "max", "epochs": 12, "every_s": 15.0, "out": None, "_best": {}})
    out = io.StringIO()
    old.out = Console(Terminal(out, tty=False), view={"total": 8, "rule": "asha", "epochs": 4})
    old.setup(total_num_samples=8)
    old.on_trial_complete(0, [trial("t1", status="RUNNING", epoch=2)], trial("t1", epoch=2))
    assert out.getvalue() == "[1/8] trial t1 stopped (asha, epoch 2)\n"


def test_after_ctrl_c_the_unfinished_trials_read_interrupted_and_the_ended_keep_their_words(monkeypatch):
    from raysweep.sweep import callbacks

    table, out = make_table(tty=False)
    trials = [trial("t1", status="TERMINATED", epoch=1), trial("t2", status="RUNNING", epoch=2), trial("t3", status="PENDING")]
    table.on_step_end(0, trials)
    monkeypatch.setattr(callbacks, "interrupted", lambda: True)
    trials[1].status = "TERMINATED"  # as Tune marks the trials it cut short
    table.on_step_end(1, trials)
    lines = table.lines(trials)
    assert [table.progress.outcome(t) for t in lines] == ["stopped (asha, epoch 1)", "interrupted", "interrupted"]
    assert table.progress.summary(lines) == "1/8 done, 0 running, 2 interrupted"
