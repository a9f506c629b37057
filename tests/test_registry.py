import json

import pytest

from poseembroider import config
from poseembroider.registry import UnknownShortnameError, load_registry, register, resolve


@pytest.fixture
def registry(tmp_path):
    packaged = tmp_path / "packaged.json"
    root = tmp_path / "models"
    (root / "pretrained" / "model_a").mkdir(parents=True)
    absolute = tmp_path / "elsewhere" / "model_b"
    absolute.mkdir(parents=True)
    packaged.write_text(
        json.dumps({"model_a": "pretrained/model_a", "model_b": str(absolute), "model_missing": "pretrained/nothing"})
    )
    return {"packaged": packaged, "models_root": root}


def test_relative_paths_resolve_against_models_root(registry):
    assert resolve("model_a", **registry) == registry["models_root"] / "pretrained" / "model_a"


def test_absolute_paths_are_allowed(registry, tmp_path):
    assert resolve("model_b", **registry) == tmp_path / "elsewhere" / "model_b"


def test_existing_path_is_returned_as_is(registry, tmp_path):
    assert resolve(tmp_path / "elsewhere", **registry) == (tmp_path / "elsewhere").resolve()


def test_unknown_shortname_lists_known_names(registry):
    with pytest.raises(UnknownShortnameError) as err:
        resolve("model_z", **registry)
    message = str(err.value)
    assert "model_z" in message and "model_a" in message and "model_b" in message


def test_registered_but_missing_model_says_where_it_looked(registry):
    with pytest.raises(FileNotFoundError, match="model_missing.*pretrained/nothing"):
        resolve("model_missing", **registry)
    assert resolve("model_missing", must_exist=False, **registry).name == "nothing"


def test_register_writes_relative_paths_and_overrides_packaged(registry):
    root = registry["models_root"]
    trained = root / "runs" / "posevae"
    trained.mkdir(parents=True)
    registry_file = register("model_a", trained, models_root=root)
    assert json.loads(registry_file.read_text()) == {"model_a": "runs/posevae"}
    assert resolve("model_a", **registry) == trained
    assert load_registry(**registry)["model_a"].source == registry_file


def test_register_rejects_bad_names(registry):
    with pytest.raises(ValueError, match="invalid shortname"):
        register("a name/with slash", registry["models_root"], models_root=registry["models_root"])
    for name in ("", "..", "x:y", "tab\tname", "-rf"):
        with pytest.raises(ValueError, match="invalid shortname"):
            register(name, registry["models_root"], models_root=registry["models_root"])


def test_corrupt_registry_names_the_file(registry):
    registry["packaged"].write_text("{not json")
    with pytest.raises(ValueError, match="packaged.json"):
        load_registry(**registry)


def test_packaged_registry_has_relative_paths_only():
    data = json.loads(config.PRETRAINED_MODEL_DICT.read_text())
    assert data, "the packaged registry lists the released models"
    assert all(not v.startswith("/") for v in data.values())


def test_installed_registry_writes_to_the_user_folder_and_reads_both(tmp_path, monkeypatch):
    """A wheel in site-packages: the packaged registry is read-only; `register` writes the user's file."""
    package_dir = tmp_path / "site-packages" / "poseembroider"
    package_dir.mkdir(parents=True)
    packaged = package_dir / "shortname_2_model_path.json"
    packaged.write_text(json.dumps({"released": "pretrained/released"}))
    packaged.chmod(0o444)
    package_dir.chmod(0o555)
    monkeypatch.setattr(config, "PACKAGE_DIR", package_dir)
    try:
        settings = config.read_settings({"XDG_CACHE_HOME": str(tmp_path / "xdg")}, package_dir=package_dir)
        monkeypatch.setattr(config, "PRETRAINED_MODEL_DICT", settings["PRETRAINED_MODEL_DICT"])
        monkeypatch.setattr(config, "MODELS_ROOT", settings["MODELS_ROOT"])
        trained = settings["MODELS_ROOT"] / "runs" / "mine"
        trained.mkdir(parents=True)
        registry_file = register("mine", trained)
        assert registry_file == tmp_path / "xdg" / "poseembroider" / "experiments" / "shortname_2_model_path.json"
        entries = load_registry()
        assert entries["mine"].path == trained and entries["released"].source == packaged
        assert json.loads(packaged.read_text()) == {"released": "pretrained/released"}
        with pytest.raises(ValueError, match="inside the package folder"):
            register("mine", trained, models_root=package_dir)
    finally:
        package_dir.chmod(0o755)


def test_the_generic_registry_refuses_twice_registered_and_unknown_names():
    from poseembroider.registry import Registry

    things: Registry = Registry("thing")

    @things.register("one")
    def one() -> int:
        return 1

    assert "one" in things and things.names() == ["one"] and things.get("one")() == 1
    with pytest.raises(ValueError, match="thing 'one' is already registered"):
        things.register("one")(lambda: 2)
    with pytest.raises(KeyError, match=r"unknown thing 'two'; registered: \['one'\]"):
        things.get("two")


def test_the_generic_registry_builds_by_name_or_from_a_folder(tmp_path):
    from poseembroider.registry import Registry

    things: Registry = Registry("thing")
    things.register("one")(lambda scale=1: 1 * scale)
    assert things.build("one", lambda path: path, scale=3) == 3
    assert things.build(tmp_path, lambda path: ("folder", path)) == ("folder", tmp_path)
    with pytest.raises(KeyError, match=r"'nothing' is neither a registered thing \(\['one'\]\) nor a folder"):
        things.build("nothing", lambda path: path)
