"""`raysweep validate --data` passes each recipe pointed at data in its users' own
layout (tests/fixtures/recipe_layouts.py), with only the paths set; the slow tier
runs them (tests/e2e/test_recipe_layouts.py)."""

import pytest

from raysweep.cli import main
from tests.fixtures.recipe_layouts import LAYOUTS, sets

EXPECTED = {  # layout -> what validate reports of the data: samples, classes, and the size the model sees
    "comp4211_image_folder_three_sizes": ("24 samples, 3 classes (multiclass)", "resized to 224x224"),  # resnet50's
    "hpa_2021_mixed_sizes": ("57 samples, 19 classes (multilabel)", "resized to 224x224"),  # 256, then the 224 crop
    "hpa_2018_id_target": ("57 samples, 19 classes (multilabel)", "resized to 224x224"),
    "ece449_ids_without_extension": ("215 samples, 43 classes (multilabel)", "resized to 224x224"),  # the ece449 preset
    "ijcnn_pandas_table_with_index": ("24 samples, 2 classes (binary)", "images 74x55x3"),
    "ijcnn_split_headerless_files": ("24 samples, 2 classes (binary)", "images 74x55x3"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_validate_data_passes_the_recipe_on_its_users_layout(layout, tmp_path, capsys):
    recipe, overrides = LAYOUTS[layout](tmp_path)
    preview = tmp_path / "preview.png"
    assert main(["validate", str(recipe), *sets(overrides), "--data", "--preview", str(preview)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    data_line = next(line for line in out.splitlines() if line.startswith("ok: data: "))
    for part in EXPECTED[layout]:
        assert part in data_line, data_line
    assert preview.stat().st_size > 0
