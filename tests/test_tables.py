"""Terminal tables: short parameter names, and 100 columns whatever the sweep searches."""

from raysweep.tables import fit_table, short_names


def test_dotted_names_become_their_shortest_unique_suffix():
    names = ["optimizer.lr", "optimizer.name", "loss.name", "model.head.dropout", "augment.dropout", "train.batch_size"]
    assert short_names(names) == {
        "optimizer.lr": "lr", "optimizer.name": "optimizer.name", "loss.name": "loss.name",
        "model.head.dropout": "head.dropout", "augment.dropout": "augment.dropout", "train.batch_size": "batch_size",
    }
    assert short_names(["c", "a.b.c"]) == {"c": "c", "a.b.c": "b.c"}


def test_a_wide_table_cuts_headers_first_then_leaves_columns_out_never_cutting_a_number():
    header = ["trial", *(f"a_very_long_parameter_name_{i}" for i in range(12)), "score"]
    rows = [["t1", *(f"{0.000123 * (i + 1):.3g}" for i in range(12)), "0.9"]]
    params = range(1, 13)
    text, dropped = fit_table(header, rows, 100, shrinkable=params, drop=params[::-1])
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100
    assert dropped == list(range(13 - len(dropped), 13))  # from the right
    kept = [c for c in lines[1].split() if c.startswith("0.00")]
    assert kept and all(v in rows[0] for v in kept)  # whole numbers
    assert lines[0].startswith("trial") and lines[0].rstrip().endswith("score")


def test_a_table_that_fits_is_left_as_it_is():
    text, dropped = fit_table(["trial", "lr"], [["t1", "0.1"]], 100, shrinkable=[1], drop=[1])
    assert (text, dropped) == ("trial  lr\nt1     0.1", [])
