"""The shared estimator base: checksummed envelope, no unpickling, registry, merged training."""

import hashlib
import io
import json

import numpy as np
import pytest
import torch

from generative import MAF, MODELS, TrainingConfig
from generative.base import DensityModel
from generative.estimator import MAGIC, CorruptFileError, pack, unpack
from generative.training import merge_settings
from tests.generative.conftest import fast_model


@pytest.fixture(scope="module")
def saved_maf(tmp_path_factory):
    rng = np.random.default_rng(0)
    x, c = rng.normal(size=(300, 2)), rng.normal(size=(300, 1))
    model = fast_model("maf").fit(x, c)
    return model, model.save(tmp_path_factory.mktemp("maf") / "model.pt")


def flip_bytes(path, n=200):
    """Invert `n` bytes a third of the way into the file."""
    data = bytearray(path.read_bytes())
    start = len(data) // 3
    data[start : start + n] = bytes(b ^ 0xFF for b in data[start : start + n])
    path.write_bytes(bytes(data))


def test_a_density_model_with_200_flipped_bytes_is_refused(saved_maf, tmp_path):
    _, path = saved_maf
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes())
    flip_bytes(bad)
    with pytest.raises(CorruptFileError, match=r"bad\.pt is corrupted: its SHA-256 checksum"):
        DensityModel.load(bad)


def test_truncated_and_foreign_files_are_refused(saved_maf, tmp_path):
    _, path = saved_maf
    short = tmp_path / "short.pt"
    short.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptFileError, match="corrupted"):
        DensityModel.load(short)
    plain = tmp_path / "plain.pt"
    torch.save({"meta": "{}"}, plain)
    with pytest.raises(CorruptFileError, match="not a resonance-search model file"):
        DensityModel.load(plain)


def test_loading_never_unpickles(tmp_path):
    # a payload with a valid header and checksum that needs the unpickler to run code
    buffer = io.BytesIO()
    torch.save({"meta": json.dumps({}), "tensors": {"x": print}}, buffer)
    payload = buffer.getvalue()
    data = MAGIC + hashlib.sha256(payload).digest() + payload
    with pytest.raises(CorruptFileError, match="content other than model data"):
        unpack(data, "evil.pt")


def test_envelope_round_trip_keeps_meta_and_tensors():
    meta, tensors = unpack(pack({"a": [1, 2]}, {"w": torch.ones(3)}))
    assert meta == {"a": [1, 2]}
    torch.testing.assert_close(tensors["w"], torch.ones(3))


def test_a_model_file_of_the_other_family_is_refused(saved_maf):
    from generative.calo.base import ShowerModel

    _, path = saved_maf
    with pytest.raises(CorruptFileError, match="not a resonance-search shower model file"):
        ShowerModel.load(path)


def test_a_subclass_without_its_own_name_does_not_register():
    before = dict(MODELS)

    class Tweaked(MAF):
        pass

    assert dict(MODELS) == before
    assert MODELS["maf"] is MAF


def test_partial_training_settings_merge_with_the_defaults():
    defaults = TrainingConfig(epochs=30, patience=6, batch_size=2048)
    merged = TrainingConfig.coerce({"epochs": 5}, defaults=defaults)
    assert (merged.epochs, merged.patience, merged.batch_size) == (5, 6, 2048)
    params = merge_settings(
        {"n_transforms": 6, "training": {"epochs": 30, "patience": 6}}, {"training": {"epochs": 5}}
    )
    assert params == {"n_transforms": 6, "training": {"epochs": 5, "patience": 6}}
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainingConfig.coerce({"epoch": 5})
