"""The package skeleton: config loading, atomic writes, run folders, the CLI."""

from dataclasses import dataclass, field

import pytest

from geomem.cli import main
from geomem.config import dump_toml, from_dict, load_config, parse_override, to_dict
from geomem.errors import ConfigError
from geomem.runs import RunFolder, atomic_path, write_json


@dataclass(frozen=True)
class Inner:
    steps: int = field(default=10, metadata={"min": 1})
    rule: str = field(default="a", metadata={"choices": ("a", "b")})


@dataclass(frozen=True)
class Outer:
    sigma: float = field(default=0.1, metadata={"gt": 0})
    sizes: tuple[int, ...] = (50, 200)
    inner: Inner = Inner()


def test_defaults_and_nested_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("sigma = 0.5\n[inner]\nsteps = 3\n")
    cfg = load_config(Outer, path, overrides=dict([parse_override("inner.rule=b")]))
    assert cfg == Outer(sigma=0.5, sizes=(50, 200), inner=Inner(steps=3, rule="b"))
    # round trip through TOML
    path2 = tmp_path / "c2.toml"
    path2.write_text(dump_toml(to_dict(cfg)))
    assert load_config(Outer, path2) == cfg


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"sigmaa": 1.0}, "sigmaa"),
        ({"sigma": "x"}, "sigma must be a number"),
        ({"sigma": -1.0}, "sigma must be > 0"),
        ({"inner": {"steps": 0}}, "inner.steps must be >= 1"),
        ({"inner": {"rule": "c"}}, "inner.rule must be one of"),
        ({"inner": {"oops": 1}}, "inner.oops"),
        ({"sizes": [1, "x"]}, "sizes[1]"),
    ],
)
def test_bad_config_names_the_key(data, needle):
    with pytest.raises(ConfigError, match=None) as info:
        from_dict(Outer, data)
    assert needle in str(info.value)


def test_nested_table_keeps_the_parents_defaults():
    @dataclass(frozen=True)
    class Parent:
        inner: Inner = Inner(steps=5, rule="b")

    assert from_dict(Parent, {"inner": {"steps": 7}}).inner == Inner(steps=7, rule="b")
    assert from_dict(Parent, {}).inner == Inner(steps=5, rule="b")


def test_missing_and_malformed_toml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("sigma = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(Outer, bad)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed")
    assert target.read_text().strip().startswith("{")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_run_folder_records_config_and_provenance(tmp_path):
    run = RunFolder(tmp_path / "run", config=Outer(), seed=3)
    assert load_config(Outer, run.file("config.toml")) == Outer()
    import json

    prov = json.loads(run.file("provenance.json").read_text())
    assert prov["seed"] == 3 and "numpy" in prov["versions"]


def test_cli_help_and_unknown_command(capsys):
    assert main(["--help"]) == 0
    assert "Memorization" in capsys.readouterr().out
    assert main(["no-such-command"]) == 2
