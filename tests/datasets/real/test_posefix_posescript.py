"""`posefix-H` / `posescript-H2` on a release made by our own code (`process_posefix.fixture`): caches built on
first load, the original's normalisation (z Euler angle zeroed; in-sequence B with A's rotation), skipped poses
counted, the AMASS source, clear errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from poseembroider import config
from poseembroider.datasets.cache_format import CacheError, cache_file_name, load_cache
from poseembroider.datasets.process_posefix.build import build_release_split
from poseembroider.datasets.process_posefix.fixture import write_posefix_release
from poseembroider.datasets.process_posefix.pose_sources import AmassPoses, SmplxPoseFiles, pose_file_path
from poseembroider.datasets.process_posefix.release import ReleaseError, read_amass_locations
from poseembroider.datasets.registry import dataset_modalities, get_dataset
from poseembroider.datasets.restricted_pickle import PickleReadError, UnsafePickleError
from poseembroider.geometry import axis_angle_to_matrix, matrix_to_euler, normalize_global_orient_amass

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def release(body_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("posefix_release")
    fixture = write_posefix_release(root / "release", body_model=body_model)
    cache_dir = root / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "POSEFIX_DIR", fixture.posefix_dir)
        patch.setattr(config, "POSESCRIPT_DIR", fixture.posescript_dir)
        patch.setattr(config, "POSEFIX_SMPLX_DIR", fixture.smplx_dir)
        patch.setattr(config, "POSESCRIPT_SMPLX_DIR", fixture.smplx_dir)
        patch.setattr(config, "DATA_CACHE_DIR", cache_dir)
        yield fixture


def _matrix(axis_angle) -> torch.Tensor:
    return axis_angle_to_matrix(torch.as_tensor(axis_angle, dtype=torch.float32))


def test_posefix_pairs_with_the_original_normalisation(release):
    dataset = get_dataset("posefix-H", "test", item_format="pt", caption_selection=0)
    expected = release.pairs["test"]
    assert len(dataset) == len(expected) and set(dataset.pair_ids) == set(expected)
    assert (config.DATA_CACHE_DIR / cache_file_name("posefix", "H", "test", "pairs")).is_file()
    kinds = set()
    for index in range(len(dataset)):
        item = dataset[index]
        a, b, kind = expected[item["pair_ids"]]
        kinds.add(kind)
        assert item["sequence_kind"] == kind and item["poses_A"].shape == (22, 3) and item["raw_texts"]
        raw_a = torch.as_tensor(release.poses_z_up[a])
        raw_b = torch.as_tensor(release.poses_z_up[b])
        assert torch.allclose(item["poses_A"][1:], raw_a[1:]) and torch.allclose(item["poses_B"][1:], raw_b[1:])
        euler_a = matrix_to_euler(_matrix(item["poses_A"][0]), "xyz")
        assert abs(float(euler_a[2])) < 1e-4  # heading (z Euler angle) zeroed
        # both poses carry one normalising rotation for in-sequence pairs, their own otherwise
        n_a = _matrix(item["poses_A"][0]) @ _matrix(raw_a[0]).T
        n_b = _matrix(item["poses_B"][0]) @ _matrix(raw_b[0]).T
        if kind == "in":
            assert torch.allclose(n_a, n_b, atol=1e-4)
        else:
            own, _ = normalize_global_orient_amass(raw_b[0])
            assert torch.allclose(_matrix(item["poses_B"][0]), _matrix(own), atol=1e-4)
    assert kinds == {"in", "out"}
    assert len(get_dataset("posefix-H", "test", pair_kinds=("out",))) == sum(k == "out" for *_, k in expected.values())


def test_unannotated_pairs_and_poses_without_file_are_skipped_with_a_count(release):
    dataset = get_dataset("posefix-H", "train", item_format="p")
    criteria = load_cache(config.DATA_CACHE_DIR / cache_file_name("posefix", "H", "train", "poses"), "poses")[
        "criteria"
    ]
    missing = release.missing_pose_ids
    assert criteria["skipped_poses_without_file"] == len(missing) == 1 and criteria["unannotated_pairs"] == 1
    uses_missing = [p for p, (a, b, _) in release.pairs["train"].items() if a in missing or b in missing]
    assert criteria["skipped_pairs_without_pose"] == len(uses_missing) > 0
    assert 0 not in dataset.pair_ids  # pair 0's only text is empty
    assert set(dataset.pair_ids) == set(release.pairs["train"]) - set(uses_missing)


def test_posefix_paraphrases_add_texts(release):
    human = get_dataset("posefix-H", "val", item_format="t")
    both = get_dataset("posefix-HPP", "val", item_format="t")
    assert set(human.pair_ids) == set(both.pair_ids)
    counts = {
        version: sum(map(len, load_cache(config.DATA_CACHE_DIR / name, "rawtexts")["texts"].values()))
        for version in ("H", "HPP")
        for name in [cache_file_name("posefix", version, "val", "rawtexts")]
    }
    assert counts["HPP"] > counts["H"]
    with pytest.raises(ValueError, match="posefix-X.*posefix-H"):
        get_dataset("posefix-X", "val")


def test_posescript_h2_poses_and_captions(release):
    dataset = get_dataset("posescript-H2", "val", item_format="pt", caption_selection=0)
    captions = json.loads((release.posescript_dir / "posescript_human_6293.json").read_text())
    split_ids = json.loads((release.posescript_dir / "val_ids_100k.json").read_text())
    expected = [i for i in split_ids if str(i) in captions]
    assert dataset.data_ids == expected
    first = captions[str(expected[0])]
    assert dataset.captions_of(expected[0]) == (first if isinstance(first, list) else [first])
    item = dataset[0]
    assert item["poses"].shape == (22, 3) and item["raw_texts"] and torch.all(item["shapes"] == 0)
    assert dataset_modalities("posescript-H2") == ("pose", "text")
    with pytest.raises(ValueError, match="posescript-H2 has no images"):
        get_dataset("posescript-H2", "val", item_format="ip")


def test_poses_resolve_to_amass_files_for_users_without_the_smplx_files(release, tmp_path):
    locations = read_amass_locations(release.posefix_dir, [0, 9])
    assert locations[9].dataset == "AMASS" and locations[9].sequence.endswith("_poses.npz")
    source = AmassPoses(release.amass_root, release.posefix_dir)
    stats = build_release_split("posefix", "H", "train", pose_source=source, cache_dir=tmp_path)
    assert stats["skipped_poses_without_file"] == 0  # AMASS has every frame
    from_amass = load_cache(tmp_path / cache_file_name("posefix", "H", "train", "poses"), "poses")
    from_smplx = SmplxPoseFiles(release.smplx_dir).load(list(from_amass["poses"]))
    for pose_id, pose in from_smplx.poses.items():
        assert torch.allclose(from_amass["poses"][pose_id][1:22], pose[1:22])
    assert from_amass["criteria"]["pose_source"] == "amass_smplh"


def test_bad_release_files_and_splits_name_the_file(release, tmp_path):
    with pytest.raises(CacheError, match="unknown split 'dev'"):
        get_dataset("posefix-H", "dev")
    with pytest.raises(ReleaseError, match="unknown split 'dev'"):
        build_release_split("posescript", "H2", "dev", cache_dir=tmp_path)
    with pytest.raises(ReleaseError, match=r"pair_id_2_pose_ids\.json"):
        build_release_split("posefix", "H", "val", release_dir=tmp_path, cache_dir=tmp_path)
    broken = tmp_path / "release"
    broken.mkdir()
    for name in ("pair_id_2_pose_ids.json", "val_in_sequence_pair_ids.json", "posefix_human_6157.json"):
        (broken / name).write_bytes((release.posefix_dir / name).read_bytes())
    (broken / "val_out_sequence_pair_ids.json").write_text("[1, 2,")
    with pytest.raises(ReleaseError, match=r"val_out_sequence_pair_ids\.json: not a valid json"):
        build_release_split("posefix", "H", "val", release_dir=broken, cache_dir=tmp_path)


def test_truncated_or_hostile_pose_files_are_errors_naming_the_file(release, tmp_path):
    smplx_dir = tmp_path / "smplx"
    smplx_dir.mkdir()
    for path in Path(release.smplx_dir).iterdir():
        (smplx_dir / path.name).write_bytes(path.read_bytes())
    pose_id = release.pairs["val"][next(iter(release.pairs["val"]))][0]
    target = pose_file_path(smplx_dir, pose_id)
    target.write_bytes(target.read_bytes()[:200])
    with pytest.raises(PickleReadError, match=rf"{target.name}: truncated"):
        build_release_split("posefix", "H", "val", pose_source=SmplxPoseFiles(smplx_dir), cache_dir=tmp_path)

    class Hostile:
        def __reduce__(self):
            return (exec, ("raise SystemExit('ran')",))

    target.write_bytes(pickle.dumps({"global_orient": Hostile()}))
    with pytest.raises(UnsafePickleError, match=rf"{target.name}.*'builtins\.exec'"):
        build_release_split("posefix", "H", "val", pose_source=SmplxPoseFiles(smplx_dir), cache_dir=tmp_path)
    target.write_bytes(pickle.dumps({"global_orient": torch.zeros(1, 3)}))
    with pytest.raises(PickleReadError, match=rf"{target.name}: missing key\(s\) \['body_pose'"):
        build_release_split("posefix", "H", "val", pose_source=SmplxPoseFiles(smplx_dir), cache_dir=tmp_path)


def test_process_posefix_command_prints_the_counts(release, capsys):
    from poseembroider.cli import main as cli_main

    assert cli_main(["data", "process-posefix", "--dataset", "posefix-H", "--splits", "train"]) == 0
    out = capsys.readouterr().out
    assert "posefix-H train:" in out and "poses_without_file 1" in out
    assert cli_main(["data", "process-posefix", "--dataset", "posefix-H", "--splits", "dev"]) == 2
    assert "unknown split 'dev'" in capsys.readouterr().err


def test_posescript_poses_follow_the_posefix_folder_unless_set(tmp_path):
    settings = config.read_settings({"POSEEMBROIDER_POSEFIX_SMPLX_DIR": str(tmp_path / "pf")})
    assert settings["POSESCRIPT_SMPLX_DIR"] == tmp_path / "pf" and settings["POSESCRIPT_DIR"] is not None
    settings = config.read_settings(
        {"POSEEMBROIDER_POSEFIX_SMPLX_DIR": str(tmp_path / "pf"), "POSEEMBROIDER_POSESCRIPT_SMPLX_DIR": str(tmp_path)}
    )
    assert settings["POSESCRIPT_SMPLX_DIR"] == tmp_path
    with pytest.raises(FileNotFoundError, match="POSEEMBROIDER_POSESCRIPT_SMPLX_DIR"):
        SmplxPoseFiles(tmp_path / "none", setting="POSESCRIPT_SMPLX_DIR").load([1])


def test_evaluate_core_runs_on_posescript_poses_and_texts(release, tmp_path, capsys):
    from poseembroider import evaluate_core
    from tiny_models import make_core_models

    captions = json.loads((release.posescript_dir / "posescript_human_6293.json").read_text())
    texts = [t for v in captions.values() for t in (v if isinstance(v, list) else [v])]
    models = make_core_models(tmp_path / "models", texts)
    capsys.readouterr()
    argv = ["--model_path", str(models["Aligner"]), "--dataset", "posescript-H2", "--split", "test", "--no_progress"]
    assert evaluate_core.main(argv) == 0
    result = json.loads((models["Aligner"] / "result_test_posescript-H2.json").read_text())
    assert {k.split("_R@")[0] for k in result["metrics"] if "_R@" in k} == {"p2t", "t2p"}
    assert result["size"] == len(get_dataset("posescript-H2", "test", item_format="p"))
