"""The one prompts module: file records, template combinations and pairs."""

import json
from pathlib import Path

import pytest

from interp.experiments.prompt_specs import FilePrompts, TemplatePrompts
from interp.prompts import (
    PromptError,
    PromptPair,
    load_pairs,
    read_records,
    template_pairs,
    word_combinations,
)


def test_csv_jsonl_and_text_records(tmp_path: Path) -> None:
    csv_file = tmp_path / "p.CSV"
    csv_file.write_text('prompt,concept\n"two\nlines",x\nplain,y\n')
    assert read_records(csv_file) == [
        {"prompt": "two\nlines", "concept": "x"},
        {"prompt": "plain", "concept": "y"},
    ]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(json.dumps({"prompt": "a"}) + "\n\n" + json.dumps({"prompt": "b"}) + "\n")
    assert read_records(jsonl) == [{"prompt": "a"}, {"prompt": "b"}]
    text = tmp_path / "p.txt"
    text.write_text(" a song \n\nanother\n")
    assert read_records(text, "text") == [{"text": "a song"}, {"text": "another"}]


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("bad.jsonl", '{"prompt": "a"}\n{oops\n', "Line 2 of bad.jsonl is not valid JSON"),
        ("list.jsonl", "[1, 2]\n", "Line 1 of list.jsonl must be a JSON object"),
        ("p.yaml", "a: b\n", "use a .csv, .jsonl or .txt"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, name: str, content: str, fragment: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(PromptError, match=fragment):
        read_records(path)


def test_not_utf8_is_a_prompt_error(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_bytes(b"ok\n\xff\xfe\n")
    with pytest.raises(PromptError, match="not UTF-8"):
        read_records(path)


def test_pairs_and_spec_prompts_read_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    rows = [
        {
            "clean": "a violin song",
            "corrupted": "a trumpet song",
            "concept": "violin",
            "clean_value": "violin",
            "corrupted_value": "trumpet",
        }
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert load_pairs(path) == [PromptPair("a violin song", "a trumpet song", "violin", "violin", "trumpet")]
    prompts = FilePrompts(file=str(path), column="clean").resolve(tmp_path)
    assert [p.text for p in prompts] == ["a violin song"]
    assert prompts[0].concept == "violin" and prompts[0].fields["corrupted"] == "a trumpet song"


def test_word_combinations_fill_templates_and_pairs_in_product_order() -> None:
    words = {"mood": ["sad", "happy"], "instrument": ["violin", "drums"]}
    assert word_combinations(words) == [
        {"mood": "sad", "instrument": "violin"},
        {"mood": "sad", "instrument": "drums"},
        {"mood": "happy", "instrument": "violin"},
        {"mood": "happy", "instrument": "drums"},
    ]
    texts = [
        p.text for p in TemplatePrompts(template="a {mood} {instrument} song", words=words).resolve(Path("."))
    ]
    assert texts == ["a sad violin song", "a sad drums song", "a happy violin song", "a happy drums song"]
    pairs = template_pairs(["{concept}, {style}"], "mood", "calm", "angry", {"style": ["jazz", "rock"]})
    assert [(p.clean, p.corrupted) for p in pairs] == [
        ("calm, jazz", "angry, jazz"),
        ("calm, rock", "angry, rock"),
    ]
