import math

import pytest

from raysweep.config.domains import Domain, extract_domains, misspelt_domain, parse_domain
from raysweep.errors import ConfigError


@pytest.mark.parametrize(
    "raw, kind, default",
    [
        ({"choice": ["a", "b"]}, "choice", "a"),
        ({"grid": [3, 1, 2]}, "grid", 3),
        ({"uniform": [0.0, 1.0]}, "uniform", 0.5),
        ({"loguniform": [1e-4, 1e-2]}, "loguniform", 1e-3),
        ({"int": [1, 4]}, "int", 2),
        ({"int": [1, 5]}, "int", 3),
        ({"choice": ["a", "b"], "default": "b"}, "choice", "b"),
        ({"uniform": [0.0, 1.0], "default": 0.1}, "uniform", 0.1),
    ],
)
def test_each_kind_parses_with_its_default(raw, kind, default):
    dom = parse_domain(raw, "x")
    assert dom.kind == kind
    assert math.isclose(dom.default_value(), default) if isinstance(default, float) else dom.default_value() == default


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"grid": []}, "grid must not be empty"),
        ({"choice": 3}, "choice must be a list of values"),
        ({"uniform": [1.0, 0.0]}, "uniform needs low < high"),
        ({"loguniform": [0.0, 1.0]}, "loguniform needs low > 0"),
        ({"int": [1.5, 3]}, "int bounds must be integers"),
        ({"uniform": [0.0, 1.0], "default": 2.0}, "default 2.0 is not in the uniform domain"),
        ({"choice": [1], "grid": [2]}, "exactly one of"),
    ],
)
def test_bad_domains_are_refused(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_domain(raw, "optimizer.lr")


def test_extract_replaces_domains_by_defaults_and_records_paths():
    raw = {"optimizer": {"lr": {"loguniform": [1e-3, 1e-1]}, "name": "sgd"}, "loss": {"name": {"grid": ["ce", "focal"]}}}
    defaults, space = extract_domains(raw)
    assert defaults["optimizer"]["name"] == "sgd"
    assert math.isclose(defaults["optimizer"]["lr"], 1e-2)
    assert defaults["loss"]["name"] == "ce"
    assert set(space) == {"optimizer.lr", "loss.name"}
    assert isinstance(space["loss.name"], Domain) and space["loss.name"].values == ("ce", "focal")


def test_domain_inside_a_list_is_refused():
    with pytest.raises(ConfigError, match="whole value of a key"):
        extract_domains({"scheduler": {"milestones": [{"choice": [1, 2]}]}})


def test_plain_mappings_are_not_domains():
    defaults, space = extract_domains({"model": {"kwargs": {"widths": [4, 8]}}, "augment": {"normalize": {"mean": [0.5], "std": [0.5]}}})
    assert space == {}
    assert defaults["augment"]["normalize"] == {"mean": [0.5], "std": [0.5]}


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"logunifrom": [1e-4, 1e-2]}, "unknown domain 'logunifrom' (did you mean 'loguniform'?); allowed: choice, grid, uniform, loguniform, int"),
        ({"normal": [0, 1], "default": 0}, "unknown domain 'normal' (did you mean 'uniform'?); allowed: choice, grid, uniform, loguniform, int"),
        ({"between": [0, 1]}, "unknown domain 'between'; allowed: choice, grid, uniform, loguniform, int"),
        ({"grid": [1, 2], "defualt": 1}, "unknown domain option 'defualt' (did you mean 'default'?); allowed: default"),
        ({"foo": 1}, None),  # not an attempt at a domain: the schema's type error stands
        ({"mean": [0.5], "std": [0.5]}, None),
        ({"grid": [1, 2]}, None),
        ([1, 2], None),
    ],
)
def test_a_refused_mapping_that_reads_as_a_misspelt_domain_is_named(raw, message):
    assert misspelt_domain(raw) == message
