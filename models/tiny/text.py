"""An offline word-level tokenizer for tiny pipelines (T5-style special tokens)."""

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, T5TokenizerFast

WORDS = (
    "a an the with and of song track piece music sad happy fast slow violin trumpet "
    "piano organ flute drums female male vocals jazz metal reggae opera cello guitar "
    "upbeat calm loud soft low quality average"
).split()


def word_tokenizer(max_length: int = 16, t5: bool = False) -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer over :data:`WORDS`; unknown words -> ``<unk>``."""
    vocab = {w: i for i, w in enumerate(["<pad>", "</s>", "<unk>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    cls = T5TokenizerFast if t5 else PreTrainedTokenizerFast
    kwargs = {"extra_ids": 0} if t5 else {}
    return cls(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
        **kwargs,
    )
