"""A directory whose one component fails to load: the error names it and its own error."""

import json
import shutil

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import T5TokenizerFast

from interp.errors import ModelNotFoundError
from interp.registry import load_model
from models.load_diagnosis import first_failing_component


def _t5_tokenizer_that_does_not_survive_save_load() -> T5TokenizerFast:
    """A T5 tokenizer wrapped around a WordLevel model: it saves, but does not load back."""
    tok = Tokenizer(models.WordLevel({"<pad>": 0, "</s>": 1, "<unk>": 2, "violin": 3}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return T5TokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0
    )


@pytest.fixture
def saved_sa(tiny_sa, tmp_path):
    tiny_sa.pipeline.save_pretrained(tmp_path / "sa")
    return tmp_path / "sa"


def test_a_complete_directory_has_no_failing_component(saved_sa):
    assert first_failing_component(saved_sa) is None


def test_a_tokenizer_that_fails_is_named_with_its_own_error(saved_sa):
    shutil.rmtree(saved_sa / "tokenizer")
    _t5_tokenizer_that_does_not_survive_save_load().save_pretrained(saved_sa / "tokenizer")
    index = json.loads((saved_sa / "model_index.json").read_text())
    index["tokenizer"] = ["transformers", "T5TokenizerFast"]
    (saved_sa / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelNotFoundError) as info:
        load_model(str(saved_sa))
    message = str(info.value)
    assert "component 'tokenizer' (T5TokenizerFast from transformers) failed: TypeError" in message
    assert "incomplete" not in message and "\n" not in message


def test_missing_vae_weights_name_the_vae(saved_sa):
    for weights in (saved_sa / "vae").glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(
        ModelNotFoundError, match=r"component 'vae' \(AutoencoderOobleck from diffusers\) failed: OSError"
    ):
        load_model(str(saved_sa))


def test_a_missing_component_folder_is_named(saved_sa):
    shutil.rmtree(saved_sa / "projection_model")
    with pytest.raises(ModelNotFoundError, match="component 'projection_model' .*its folder .* is missing"):
        load_model(str(saved_sa))
