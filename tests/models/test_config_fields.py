"""config_field: the one helper every config dataclass declares its fields with."""

from dataclasses import dataclass, fields

from poseembroider.models.config_fields import config_field


@dataclass
class _Example:
    size: int = config_field(512, "width of the layer", choices=(256, 512))
    names: list = config_field(["a", "b"], "mutable default")
    table: dict = config_field({"k": [1]}, "nested mutable default")


def test_help_and_extra_metadata_are_kept():
    meta = {f.name: f.metadata for f in fields(_Example)}
    assert meta["size"] == {"help": "width of the layer", "choices": (256, 512)}
    assert meta["names"]["help"] == "mutable default"
    assert _Example().size == 512


def test_mutable_defaults_are_fresh_copies():
    a, b = _Example(), _Example()
    a.names.append("c")
    a.table["k"].append(2)
    assert b.names == ["a", "b"] and b.table == {"k": [1]}


def test_every_config_dataclass_uses_the_shared_helper():
    """No module keeps a private copy of the helper (the four `_f` copies it replaced)."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src" / "poseembroider"
    copies = [p for p in src.rglob("*.py") if "def _f(" in p.read_text()]
    assert copies == []
