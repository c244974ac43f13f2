"""The terminal of a sweep: in-place drawing, and what goes to the log instead."""

import io
import logging
import os
import sys

from raysweep.terminal import LOG_FILE, Terminal, quiet, shown_path, shown_uri


def test_the_live_block_is_redrawn_in_place_and_lines_that_stay_go_above_it():
    out = io.StringIO()
    term = Terminal(out, tty=True, width=20, height=10)
    term.show(["a", "b" * 30])
    assert out.getvalue() == "a\n" + "b" * 19 + "…\n"  # cut to the width
    term.say("trial t1 failed: boom")
    term.show(["c"])
    assert out.getvalue().split("\n", 2)[2] == (
        "\x1b[2A\r\x1b[J" "trial t1 failed: boom\n" "a\n" + "b" * 19 + "…\n"  # the line (whole), then the block again
        "\x1b[2A\r\x1b[J" "c\n"
    )
    term.release()
    term.say("next")
    assert out.getvalue().endswith("c\nnext\n")  # the last block stays; no cursor movement


def test_the_width_is_the_terminals_but_never_over_100_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert Terminal(io.StringIO()).width == 80
    monkeypatch.setenv("COLUMNS", "250")
    assert Terminal(io.StringIO()).width == 100
    monkeypatch.delenv("COLUMNS")
    assert Terminal(io.StringIO()).width == 100  # not a terminal: 100
    assert not Terminal(io.StringIO()).tty


def test_inside_quiet_what_the_process_writes_goes_to_the_log_and_raysweeps_lines_to_the_terminal(tmp_path, capfd):
    logs = tmp_path / "logs"
    with quiet(str(logs)) as console:
        os.write(1, b"(raylet) WARNING: 8 PYTHON worker processes\n")  # as Ray's C++ and forwarding do
        os.write(2, b"(TrainController pid=1) ActorDiedError\n")
        print("Tune's box", file=sys.stderr, flush=True)
        for _ in range(3):
            logging.getLogger("raysweep.sweep.state_backup").warning("could not back up the sweep's state: disk full")
        console.terminal.say("1/4 done")
    os.write(1, b"after\n")
    out, err = capfd.readouterr()
    assert out == "warning: could not back up the sweep's state: disk full\n1/4 done\nafter\n"
    assert err == ""
    log = (logs / LOG_FILE).read_text()
    for line in ("(raylet) WARNING", "(TrainController pid=1) ActorDiedError", "Tune's box", "could not back up"):
        assert line in log
    with quiet(str(logs)):
        os.write(1, b"resumed\n")
    assert (logs / LOG_FILE).read_text().startswith(log) and "resumed" in (logs / LOG_FILE).read_text()


def test_paths_are_shown_as_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert shown_path(str(tmp_path / "results" / "q")) == os.path.join("results", "q")
    assert shown_path("/elsewhere/results") == "/elsewhere/results"
    assert shown_path("s3://bucket/results") == "s3://bucket/results"
    assert shown_uri(f"sqlite:///{tmp_path / 'mlflow.db'}") == "sqlite:///mlflow.db"
    assert shown_uri("http://mlflow:5000") == "http://mlflow:5000"


def test_a_print_into_a_full_log_is_dropped_not_raised():
    """Tune prints from inside its experiment loop: a full results disk must not end the sweep there."""
    from raysweep.terminal import _LogSink

    sink = _LogSink(os.open("/dev/full", os.O_WRONLY))  # every write: ENOSPC
    print("Tune's box", file=sink)
    sink.flush()
    sink.close()
