"""The report's pieces on hand-made inputs: summary tables, escaping, the head grid and
its inline (Jupyter) form. Tables are read back with the standard HTML parser."""

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import soundfile

from interp.experiments.report import head_grid_data, head_grid_html, render, summary_tables, table_html
from interp.statistics import Effect


class _Tables(HTMLParser):
    """Every table's rows as lists of cell texts; also counts elements by tag."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.tags: dict[str, int] = {}
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.attrs.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_nested_summary_becomes_concept_rows_by_metric_columns() -> None:
    summary = {
        "units": 2,
        "layer_impact": {
            "tempo": {"cross.0.text": 0.75, "cross.1.text": 0.25},
            "drums": {"cross.1.text": 1.0},
        },
        "subsets": {"tempo": ["cross.0.head.1", "cross.1.head.3"], "drums": []},
        "top": [{"site": "cross.0.head.1", "effect": 0.123456}, {"site": "cross.1.head.3", "effect": -2}],
        "overlap": {"concepts": ["drums", "tempo"], "jaccard": [[1.0, 0.0], [0.0, 1.0]]},
        "audio": ["audio/x.wav"],
    }
    parsed = _Tables(summary_tables(summary, skip=("audio",)))
    plain, impact, subsets, top, overlap = parsed.tables
    assert plain == [["", "value"], ["units", "2"]]
    assert impact == [["", "cross.0.text", "cross.1.text"], ["tempo", "0.75", "0.25"], ["drums", "", "1"]]
    assert subsets == [["", "value"], ["tempo", "cross.0.head.1, cross.1.head.3"], ["drums", "(none)"]]
    assert top == [["site", "effect"], ["cross.0.head.1", "0.1235"], ["cross.1.head.3", "-2"]]
    assert overlap == [["", "value"], ["concepts", "drums, tempo"], ["jaccard", "[1, 0], [0, 1]"]]
    assert "audio/x.wav" not in summary_tables(summary, skip=("audio",))
    assert "<pre>" not in summary_tables(summary)


def test_long_lists_are_cut_in_a_cell() -> None:
    (table,) = _Tables(summary_tables({"heads": {"tempo": list(range(30))}})).tables
    assert table[1][1] == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, (18 more)"


def test_user_text_is_escaped_everywhere(tmp_path: Path) -> None:
    evil = "<script>alert('x')</script>"
    summary = {
        "experiment": evil,
        "description": evil,
        "model": evil,
        "rows": 1,
        "steps": [
            {"name": evil, "method": "generate", "units": 1, "summary": {evil: {evil: evil}}, "files": []}
        ],
    }
    page = render(tmp_path, summary, [{"prompt": evil, "value": 1.0}], inline=False)
    parsed = _Tables(page)
    assert parsed.tags["script"] == 1  # the report's own script only
    assert evil not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert [evil, "1"] in parsed.tables[-1]  # the results row, read back as text


def _grid(tmp_path: Path) -> dict:
    wav = tmp_path / "audio" / "locate" / "tempo-head-cross.1.head.0.wav"
    wav.parent.mkdir(parents=True)
    soundfile.write(wav, np.zeros(160), 16000, subtype="PCM_16", format="WAV")
    effects = {
        "cross.0.head.0": Effect(0.5, 0.4, 0.6, 3),
        "cross.0.head.1": Effect(-0.25, -0.3, -0.2, 3),
        "cross.1.head.0": Effect(1.0, 0.9, 1.1, 3),
    }
    return head_grid_data(
        "tempo",
        effects,
        subset=["cross.1.head.0"],
        significant=["cross.1.head.0"],
        q={"cross.1.head.0": 0.01},
        alpha=0.05,
        audio={"cross.1.head.0": "audio/locate/tempo-head-cross.1.head.0.wav"},
        clips={"clean": "audio/locate/tempo-head-cross.1.head.0.wav"},
        pair=("a slow <b>song</b>", "a fast song"),
        seed=0,
    )


def test_head_grid_places_cells_by_layer_and_head(tmp_path: Path) -> None:
    doc = _grid(tmp_path)
    assert json.loads(json.dumps(doc)) == doc  # JSON-ready
    parsed = _Tables(head_grid_html(doc, tmp_path, inline=False))
    (grid,) = parsed.tables
    assert grid == [["layer \\ head", "0", "1"], ["cross 0", "0.50", "-0.25"], ["cross 1", "1.00*", ""]]
    buttons = [a for tag, a in parsed.attrs if tag == "button"]
    assert [b["data-audio"] for b in buttons] == ["audio/locate/tempo-head-cross.1.head.0.wav"]
    cells = {
        str(a.get("title")).split(":")[0]: a for tag, a in parsed.attrs if tag == "td" and a.get("title")
    }
    assert cells["cross.1.head.0"]["class"] == "subset" and "q 0.01" in str(cells["cross.1.head.0"]["title"])
    assert "background:#b2182b" in str(cells["cross.1.head.0"]["style"])  # the largest effect: full red
    assert "background:#ffffff" not in str(cells["cross.0.head.1"]["style"])  # negative: bluish
    audios = [a for tag, a in parsed.attrs if tag == "audio"]
    assert all(a["preload"] == "none" for a in audios) and len(audios) == 2  # clean + the head player
    assert "&lt;b&gt;song&lt;/b&gt;" in head_grid_html(doc, tmp_path, inline=False)


def test_inline_grid_embeds_the_audio(tmp_path: Path) -> None:
    parsed = _Tables(head_grid_html(_grid(tmp_path), tmp_path, inline=True))
    (button,) = [a for tag, a in parsed.attrs if tag == "button"]
    assert str(button["data-audio"]).startswith("data:audio/wav;base64,UklGR")  # "RIFF"


def test_results_table_is_sortable_and_cut() -> None:
    rows = [{"metric": "m", "value": float(v), "empty": None} for v in range(60)]
    html = table_html(rows, limit=5)
    parsed = _Tables(html)
    assert parsed.tables[0][0] == ["metric", "value"]  # the empty column is dropped
    assert len(parsed.tables[0]) == 6 and "55 more rows" in html
    assert all(a.get("onclick") == "tadaSort(this)" for tag, a in parsed.attrs if tag == "th")


def test_a_missing_grid_file_is_a_note_not_a_crash(tmp_path: Path) -> None:
    step = {"name": "locate", "method": "locate", "units": 1, "summary": {},
            "files": ["data/locate/head-grid-tempo.json", "plots/locate-heads-tempo.png"]}  # fmt: skip
    summary = {"experiment": "e", "model": "m", "rows": 0, "steps": [step]}
    page = render(tmp_path, summary, [], inline=False)
    assert "Head grid data/locate/head-grid-tempo.json cannot be read" in page
    assert "<figcaption>heads tempo</figcaption>" in page  # caption from the file name, step prefix dropped


def test_captions_name_files_apart_within_a_step() -> None:
    from interp.experiments.report.media import caption, short_name

    assert caption("plots/locate-heads-tempo.png", "locate") == "heads tempo"
    assert caption("steering/steer/localized/curves.png", "steer") == "localized curves"
    assert caption("steering/steer/all_layers/curves.png", "steer") == "all layers curves"
    assert caption("steering/steer/localized/audio/alpha_+2.000_sample_0.wav", "steer") == (
        "localized alpha +2.000 sample 0"
    )
    assert caption("audio/steer/alpha_-2.000_sample_1.wav", "steer") == "alpha -2.000 sample 1"
    assert caption("plots/when-steps-0-5.png", "when") == "steps 0 5"
    assert short_name("steering/steer/localized/curve.csv", "steer") == "localized/curve.csv"
