"""Loading by name or path, structure-only builds, and the errors of each."""

import json

import pytest

from interp.errors import ModelNotFoundError, UnsupportedModelError
from interp.registry import known_names, load_model


def test_known_names_include_the_paper_models():
    assert "stable-audio-open-1.0" in known_names()


def test_unknown_name_suggests_close_names():
    with pytest.raises(ModelNotFoundError, match="Did you mean 'stable-audio-open-1.0'"):
        load_model("stable-audio-open-1")


def test_missing_weights_give_one_clear_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelNotFoundError) as info:
        load_model("stable-audio-open-1.0")
    message = str(info.value)
    assert "stabilityai/stable-audio-open-1.0" in message and "--no-weights" in message
    assert "Traceback" not in message and "\n" not in message


def test_full_size_stable_audio_open_structure_on_meta():
    model = load_model("stable-audio-open-1.0", weights=False)
    assert not model.has_weights
    catalog = model.catalog
    assert catalog.count("self") == 24 and catalog.count("cross") == 24
    assert len(catalog.where(attention="cross", component="head")) == 576
    cross = catalog.module("cross", 12)
    assert (cross.n_heads, cross.n_kv_heads, cross.d_head, cross.d_context) == (24, 12, 64, 768)
    assert cross.path == "transformer_blocks.12.attn2"
    with pytest.raises(Exception, match="without weights"):
        model.require_weights("generate")


def test_local_directory_is_detected_from_model_index(tiny_sa, tmp_path):
    tiny_sa.pipeline.save_pretrained(tmp_path / "sa")
    model = load_model(str(tmp_path / "sa"))
    assert model.family == "stable-audio" and model.catalog.count("cross") == 2


def test_directory_without_model_index_or_with_unknown_pipeline(tmp_path):
    with pytest.raises(UnsupportedModelError, match="no model_index.json"):
        load_model(str(tmp_path))
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    with pytest.raises(UnsupportedModelError, match="'FluxPipeline', which no adapter supports"):
        load_model(str(tmp_path))
