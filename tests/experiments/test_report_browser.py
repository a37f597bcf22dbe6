"""The report explorer in a real headless browser (Debian's chromium + chromium-driver,
driven by Selenium): a small real run on the tiny model, opened from disk via file://."""

import shutil
import warnings
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from interp.experiments import run as run_experiment

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; "
        ".ci/run installs them)",
    ),
]

EVIL = "a <script>window.tadaHacked = 1</script> violin song"

SPEC = {
    "name": "explorer",
    "description": f"prompt: {EVIL}",
    "model": {"name": "tiny-stable-audio"},
    "generation": {"num_steps": 3, "guidance_scale": 3.0, "duration_s": 4.0, "seeds": [0]},
    "prompts": {"evil": [EVIL]},
    "metrics": ["rms"],
    "steps": [
        {"name": "gen", "method": "generate", "prompts": "evil"},
        {
            "name": "locate",
            "method": "locate",
            "metric": "latent_distance",
            "max_heads": 2,
            "layer_impact": False,
            "audio_heads": 3,
            "pairs": {"source": "tada", "concepts": ["violin"], "per_concept": 2},
        },
    ],
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("explorer") / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_experiment(SPEC, out=out, progress=False)
    return out


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1200,1600", "--autoplay-policy=no-user-gesture-required"):  # fmt: skip
        options.add_argument(argument)
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver path: Selenium Manager never runs, nothing is downloaded
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _severe(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_clicking_a_head_cell_plays_its_clip(run_dir: Path, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    audio = sorted((run_dir / "audio" / "locate").glob("violin-head-*.wav"))
    assert len(audio) == 3  # audio_heads: only the cells that play have a clip
    browser.get((run_dir / "index.html").as_uri())
    cells = browser.find_elements(By.CSS_SELECTOR, "table.heads td")
    assert len(cells) == 8  # every head of the tiny model is drawn
    buttons = browser.find_elements(By.CSS_SELECTOR, "table.heads button")
    assert len(buttons) == 3
    player = browser.find_element(By.CSS_SELECTOR, "audio.patched")
    assert not player.get_attribute("src")
    buttons[1].click()
    WebDriverWait(browser, 10).until(lambda d: player.get_attribute("src"))
    src = urlparse(player.get_attribute("src"))
    assert src.scheme == "file"
    played = Path(unquote(src.path))
    assert played.is_file() and played.parent == run_dir / "audio" / "locate"
    assert played.name.startswith("violin-head-cross.")
    site = played.stem.removeprefix("violin-head-")
    assert browser.find_element(By.CSS_SELECTOR, ".grid .now").text.startswith(site + ":")
    clips = browser.find_elements(By.CSS_SELECTOR, ".grid .audio audio")
    for clip in clips:  # clean, corrupted, subset patched, then the head player
        assert Path(unquote(urlparse(clip.get_attribute("src")).path)).is_file()
    assert _severe(browser) == []


def test_prompt_renders_as_text_and_tables_sort(run_dir: Path, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get((run_dir / "index.html").as_uri())
    assert browser.execute_script("return window.tadaHacked === undefined")
    assert len(browser.find_elements(By.TAG_NAME, "script")) == 1  # the report's own
    assert EVIL in browser.find_element(By.TAG_NAME, "body").text
    table = browser.find_element(By.CSS_SELECTOR, "table.results")
    names = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    column = names.index("value")
    table.find_elements(By.CSS_SELECTOR, "thead th")[column].click()

    def values() -> list[float]:
        rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        return [float(r.find_elements(By.TAG_NAME, "td")[column].text) for r in rows]

    shown = values()
    assert shown == sorted(shown) and len(set(shown)) > 1
    table.find_elements(By.CSS_SELECTOR, "thead th")[column].click()
    assert values() == sorted(shown, reverse=True)
    assert _severe(browser) == []


def test_inline_report_plays_embedded_clips(run_dir: Path, browser, tmp_path: Path) -> None:
    """Jupyter's form of the report (files inline), shown as a page of its own."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from interp.experiments.results import Results

    page = tmp_path / "inline.html"  # outside the run directory: nothing can be linked
    page.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">'
                    f"</head><body>{Results(run_dir)._repr_html_()}</body></html>", encoding="utf-8")  # fmt: skip
    browser.get(page.as_uri())
    button = browser.find_elements(By.CSS_SELECTOR, "table.heads button")[0]
    button.click()
    player = browser.find_element(By.CSS_SELECTOR, "audio.patched")
    WebDriverWait(browser, 10).until(lambda d: player.get_attribute("src"))
    assert player.get_attribute("src").startswith("data:audio/wav;base64,")
    images = browser.find_elements(By.CSS_SELECTOR, "figure img")
    assert images and all(i.get_attribute("src").startswith("data:image/png;base64,") for i in images)
    for image in images:  # lazy images load once scrolled to; every one decodes
        browser.execute_script("arguments[0].scrollIntoView()", image)
        WebDriverWait(browser, 10).until(
            lambda d, image=image: d.execute_script("return arguments[0].naturalWidth", image)
        )
    assert _severe(browser) == []
