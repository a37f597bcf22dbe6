"""The shipped concept vocabulary generates exactly the prompt pairs it always did.

Ground truth: SHA-256 digests of every pair (clean, corrupted, concept, values) that
``tada_pairs`` and ``steering_concept`` produced from the two separate YAML files
(``interp/data/tada_concepts.yaml`` and ``interp/steering/data/steering_concepts.yaml``)
before they were merged into one vocabulary (``interp/data/concepts.yaml``). A changed
word, order or value changes a digest.
"""

import hashlib
import json
import re
from pathlib import Path

import interp
from interp.prompts import PromptPair, concept_vocabulary, tada_concepts, tada_pairs
from interp.steering.concepts import steering_concept, steering_concept_names

TADA_ORDER = [
    "female", "male", "fast", "slow", "happy", "sad", "reggae", "metal", "opera", "jazz", "violin",
    "trumpet", "saxophone", "drums", "cello", "bongos", "flute", "maracas", "harmonica", "trombone",
    "xylophone",
]  # fmt: skip

# All 64 pairs (8 templates x 8 styles) of each TADA concept.
TADA_DIGESTS = {
    "female": "ab0ac73b724274d1",
    "male": "79b4b6fa26520e45",
    "fast": "fda10c47d49e3bde",
    "slow": "bb126f8394f65785",
    "happy": "712560feadd13428",
    "sad": "d8d77a36c412da97",
    "reggae": "4b7bb29878b99a09",
    "metal": "55bb66f7490eb154",
    "opera": "f182cfd5302f1bff",
    "jazz": "f2627c13dfb69c44",
    "violin": "0b1acb3c1a344881",
    "trumpet": "50001091edbfb742",
    "saxophone": "b0506091a7485946",
    "drums": "473dd4c7053c0532",
    "cello": "7d44d34d28259d67",
    "bongos": "8d189f2d025c4779",
    "flute": "3a5071e765ef4c41",
    "maracas": "456379fb0535a822",
    "harmonica": "06f4283fc45537dc",
    "trombone": "cca5c4cc66687bf1",
    "xylophone": "32dfb42d9026cfc5",
}

# All 50 pairs of each steering concept, and the scorer value each names.
STEERING = {
    "happy": ("8752f4183891d2ca", "mood", "happy", "sad"),
    "fast": ("07e3630a841377c7", "tempo", "fast", "slow"),
    "female": ("2ddc903fbb9d9584", "vocals", "female", "male"),
    "violin": ("a60206659289215a", "instrument", "violin", None),
    "piano": ("a2558acd9651e080", "instrument", "piano", None),
    "drums": ("f1d90d0f23dd5189", "drums", "yes", "no"),
    "jazz": ("2148215d4ea42299", "genre", "jazz", None),
    "metal": ("d902ebef27008ab2", "genre", "metal", None),
    "reggae": ("04fd352ea3b5caa9", "genre", "reggae", None),
}


def digest(pairs: "list[PromptPair] | tuple[PromptPair, ...]") -> str:
    rows = [[p.clean, p.corrupted, p.concept, p.clean_value, p.corrupted_value] for p in pairs]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def test_tada_pairs_are_unchanged():
    assert list(tada_concepts()["concepts"]) == TADA_ORDER
    got = {name: digest(tada_pairs([name], per_concept=10_000)) for name in TADA_ORDER}
    assert got == TADA_DIGESTS
    default = tada_pairs()
    assert len(default) == 21 * 16 and digest(default) == "853178900d7b4344"


def test_steering_pairs_are_unchanged():
    # vocabulary order (the separate steering file listed happy, fast, female, violin,
    # piano, drums, jazz, metal, reggae)
    names = ["female", "fast", "happy", "reggae", "metal", "jazz", "violin", "piano", "drums"]
    assert steering_concept_names() == names and set(names) == set(STEERING)
    for name, (expected, scorer_concept, target, opposite) in STEERING.items():
        concept = steering_concept(name)
        assert len(concept.pairs) == 50
        assert digest(concept.pairs) == expected, name
        scored = (concept.scorer_concept, concept.target, concept.opposite)
        assert scored == (scorer_concept, target, opposite), name
    first = steering_concept("happy", 1).pairs[0]
    assert (first.clean, first.corrupted) == ("a calm happy song", "a calm sad song")


def test_every_concept_is_written_once():
    text = (Path(interp.__file__).parent / "data" / "concepts.yaml").read_text()
    written = re.findall(r"^  ([a-z]+):", text.split("\nconcepts:\n", 1)[1], flags=re.MULTILINE)
    assert len(written) == len(set(written)) == 22  # the 21 TADA concepts and piano
    assert list(concept_vocabulary()["concepts"]) == written
