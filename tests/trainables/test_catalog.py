"""The registries' catalogue (`trainables/catalog.json`) says what the registries hold: the
config checks and the search space read it instead of importing torch, timm and albumentations."""

from importlib import metadata

from trainables import catalog


def test_the_shipped_catalogue_is_the_registries_under_the_installed_timm():
    shipped = catalog.shipped()
    assert shipped is not None, f"catalog.json was written under another timm than {metadata.version('timm')}: run python -m trainables.catalog"
    live = catalog.live()
    assert shipped == live, "catalog.json differs from the registries: run python -m trainables.catalog"
    assert catalog.FILE.read_text() == live.to_json()


def test_the_catalogue_answers_as_the_registries_do():
    import timm

    from trainables.losses import LOSSES, loss_params
    from trainables.optim import optimizer_keys

    known = catalog.current()
    for name in ("resnet18", "resnet18.a1_in1k", "tiny_cnn", "resse", "resnet1800", "resnet18.", "no_such.a1"):
        assert known.model_exists(name) == timm.is_model(name), name
    for name in ("sgd", "adam", "ranger", "lookahead_adamw", "no_such"):
        assert known.optimizer_keys(name) == optimizer_keys(name), name
    assert {name: set(c.params) for name, c in known.losses.items()} == {name: loss_params(name) for name in LOSSES.names()}


def test_under_another_timm_the_registries_are_read(tmp_path, monkeypatch):
    other = catalog.Catalog.from_json(catalog.FILE.read_text().replace(f'"timm": "{metadata.version("timm")}"', '"timm": "0.0.1"'))
    monkeypatch.setattr(catalog, "FILE", tmp_path / "catalog.json")
    catalog.FILE.write_text(other.to_json())
    assert catalog.shipped() is None
    catalog.FILE.write_text("{not json")
    assert catalog.shipped() is None
