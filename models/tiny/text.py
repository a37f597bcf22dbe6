"""An offline word-level tokenizer for tiny pipelines (T5-style special tokens)."""

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

WORDS = (
    "a an the with and of song track piece music sad happy fast slow violin trumpet "
    "piano organ flute drums female male vocals jazz metal reggae opera cello guitar "
    "upbeat calm loud soft low quality average"
).split()


def word_tokenizer(max_length: int = 16) -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer over :data:`WORDS`; unknown words -> ``<unk>``."""
    vocab = {w: i for i, w in enumerate(["<pad>", "</s>", "<unk>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
    )
