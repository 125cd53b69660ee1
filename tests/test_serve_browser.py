"""End to end in a real headless browser: the page loads, builds its tabs from the server's
capabilities, folds the example RNAs (examples/rna.fa, uploaded through the file input) and shows
each record's dot-bracket and drawing. Uses the system Chromium and chromedriver (Debian:
``apt-get install chromium chromium-driver``); nothing is downloaded; skipped without them.
``NUCFM_SCREENSHOT=path.png`` also saves the screenshot there."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="nucfm serve needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="nucfm serve needs uvicorn: pip install -e '.[serve]'")
pytest.importorskip("selenium", reason="the browser test drives Chromium with selenium (test extra)")

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "rna.fa"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                       reason="no system Chromium + chromedriver (Debian: apt-get install chromium chromium-driver)"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    from nucfm.serve.app import create_app

    from serve_fixtures import slots, write_genome

    models, genomes = slots(write_genome(tmp_path_factory.mktemp("genome") / "toy.fa"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(models, genomes), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    t0 = time.time()
    while not srv.started:
        assert time.time() - t0 < 30, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600",
                "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_fold_the_examples_in_a_browser(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    tabs = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#tabs button")]
    assert tabs == ["Fold", "Embed", "Variant effects", "Probabilities / logo"]
    form = browser.find_element(By.ID, "fold-form")
    form.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(EXAMPLES))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def drawn(d):
        imgs = d.find_elements(By.CSS_SELECTOR, "#fold-results img.plot")
        return len(imgs) == 4 and all(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i)
                                      for i in imgs)

    WebDriverWait(browser, 120).until(drawn)
    pres = browser.find_elements(By.CSS_SELECTOR, "#fold-results pre.dbn")
    seq, dbn = pres[0].text.split("\n")
    assert seq.startswith("GCGGAUUUAGCUCAGUUGG") and len(dbn) == len(seq) == 76 and set(dbn) <= set(".()[]{}<>")
    assert "done" in browser.find_element(By.ID, "fold-status").text
    links = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#fold-downloads a")]
    assert "download dot-bracket" in links and "download CT" in links
    width = browser.execute_script("return document.querySelector('#fold-results img.plot').naturalWidth")
    assert width > 500
    shot = tmp_path / "serve.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("NUCFM_SCREENSHOT"):
        shutil.copy(shot, os.environ["NUCFM_SCREENSHOT"])


def test_an_error_is_shown_on_the_page(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/?again#fold")  # a new load: a changed hash alone keeps the form
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    browser.find_element(By.CSS_SELECTOR, "#fold-form textarea").send_keys("not fasta")
    browser.find_element(By.CSS_SELECTOR, "#fold-form button[type=submit]").click()
    status = browser.find_element(By.ID, "fold-status")
    WebDriverWait(browser, 20).until(lambda d: "error" in status.get_attribute("class"))
    assert "not FASTA" in status.text and "/tmp" not in status.text
