"""PoseTensorDataset: the poses of a registry dataset in one tensor, as train_poseVAE reads them."""

from __future__ import annotations

import pytest
import torch

from poseembroider.assisting_models.poseVAE import train_poseVAE
from poseembroider.assisting_models.poseVAE.data import PoseTensorDataset
from poseembroider.datasets.registry import get_dataset


def test_items_are_the_dataset_poses_in_order(posevae_dataset):
    dataset = get_dataset(posevae_dataset, "train", item_format="p")
    tensor = PoseTensorDataset.from_dataset(dataset, batch_size=50)
    assert len(tensor) == len(dataset)
    for i in (0, 1, 77, len(dataset) - 1):
        assert set(tensor[i]) == {"poses"} and torch.equal(tensor[i]["poses"], dataset[i]["poses"])


def test_train_script_reads_poses_once_unless_flips_are_drawn(posevae_dataset):
    args = train_poseVAE.build_parser().parse_args(["--dataset", posevae_dataset, "--data_size", "40"])
    train, val = train_poseVAE.load_datasets(args)
    assert isinstance(train, PoseTensorDataset) and isinstance(val, PoseTensorDataset) and len(train) == 40
    flipping = train_poseVAE.build_parser().parse_args(["--dataset", posevae_dataset, "--apply_LR_augmentation"])
    train, _ = train_poseVAE.load_datasets(flipping)
    assert not isinstance(train, PoseTensorDataset)  # the registry dataset draws a flip per item


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"\(N, J, 3\)"):
        PoseTensorDataset(torch.zeros(4, 66))
    with pytest.raises(ValueError, match="empty"):
        PoseTensorDataset.from_dataset([])
