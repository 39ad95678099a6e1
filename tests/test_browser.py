"""The project's site as a reader gets it: every page opened in headless Chromium (Debian's chromium and
chromium-driver, driven by selenium), served from 127.0.0.1. A full-page screenshot of each page is saved
next to the build, in <project>/screenshots/, for review."""

from __future__ import annotations

import base64
import json
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest

pytestmark = pytest.mark.real_models

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 60  # an upper bound for the page to settle, not a timing assertion

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is pinned in requirements-dev.txt")
from selenium.webdriver.chrome.service import Service  # noqa: E402 - after importorskip: skipped without selenium
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # the stdlib's name
        pass


@pytest.fixture(scope="module")
def served(project_site) -> Iterator[tuple[Path, str]]:
    """The built site over HTTP on 127.0.0.1 (a free port), as (site folder, base URL)."""
    project, _ = project_site
    site = project / "site"
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(
            f"{CHROMIUM} and {CHROMEDRIVER} are needed: apt-get install -y chromium chromium-driver "
            "(`make test-models` does this)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--window-size=1400,1000",
        "--force-prefers-reduced-motion",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _page_urls(site: Path, base: str) -> set[str]:
    """Every page MkDocs built, as the URL a reader opens (directory URLs); the 404 page is not a page."""
    pages = set()
    for html in site.rglob("index.html"):
        relative = html.parent.relative_to(site).as_posix()
        pages.add(base if relative == "." else f"{base}{relative}/")
    return pages


def _open(driver, url: str) -> None:
    driver.get_log("performance")  # drop earlier events (the browser's own start page included)
    driver.get(url)
    WebDriverWait(driver, WAIT).until(lambda d: d.execute_script("return document.readyState") == "complete")
    # The search index is fetched by the page's script once it has started: its arrival means the theme's
    # JavaScript ran, and any error it met is in the console log by now.
    WebDriverWait(driver, WAIT).until(
        lambda d: d.execute_script(
            "return performance.getEntriesByType('resource').some(e => e.name.endsWith('/search/search_index.json'))"
        )
    )


def _open_fresh(driver, url: str) -> None:
    """Open a page as a first-time reader: no palette or tab choice remembered from an earlier test."""
    _open(driver, url)
    driver.execute_script("localStorage.clear(); sessionStorage.clear()")
    _open(driver, url)
    driver.get_log("browser")  # start this test with an empty console log


def _local(url: str) -> bool:
    """Only network schemes can leave the machine (data:, blob:, about: and the browser's own chrome:// pages
    cannot); those must go to the server on 127.0.0.1."""
    parts = urlsplit(url)
    return parts.scheme not in ("http", "https", "ws", "wss", "ftp") or parts.hostname == "127.0.0.1"


def _requests(driver) -> list[str]:
    """Every URL the page asked for: DevTools network events plus the page's own resource timing entries."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.append(message["params"]["url"])
    urls += driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    return urls


def _screenshot(driver, path: Path) -> None:
    """The whole page, not only the window."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def _name(url: str, base: str) -> str:
    return url[len(base) :].strip("/") or "index"


def test_every_page_loads_cleanly_offline_and_the_navigation_reaches_all_of_them(browser, served):
    site, base = served
    pages = _page_urls(site, base)
    assert len(pages) >= 6, f"expected the explainer's pages, found {sorted(pages)}"
    shots = site.parent / "screenshots"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir()

    _open_fresh(browser, base)
    reached, to_visit, visited = {base}, [base], []
    while to_visit:
        url = to_visit.pop(0)
        _open(browser, url)
        visited.append(url)
        name = _name(url, base)

        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], f"{name}: console errors {errors}"
        remote = sorted({u for u in _requests(browser) if not _local(u)})
        assert remote == [], f"{name}: requests leaving the machine {remote}"
        assert browser.find_element(By.CSS_SELECTOR, "article h1").text.strip(), f"{name}: no title"
        assert not browser.find_elements(By.CSS_SELECTOR, ".llmx-failed, .llmx-skipped, .llmx-unexecuted"), (
            f"{name}: a block failed or did not run"
        )

        links = browser.execute_script(
            "return [...document.querySelectorAll('nav.md-nav--primary a.md-nav__link[href]')].map(a => a.href)"
        )
        targets = {urldefrag(link).url for link in links}
        assert targets <= pages, f"{name}: navigation links to pages that were not built: {sorted(targets - pages)}"
        for target in sorted(targets - reached):
            reached.add(target)
            to_visit.append(target)

        _screenshot(browser, shots / f"{name}.png")

    assert reached == pages, f"pages the navigation never reaches: {sorted(pages - reached)}"
    saved = sorted(p.name for p in shots.glob("*.png"))
    assert saved == sorted(f"{_name(u, base)}.png" for u in pages)
    assert all((shots / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in saved)


def test_tabs_switch_and_comparisons_sit_side_by_side(browser, served):
    _, base = served
    _open_fresh(browser, f"{base}side-by-side/")
    tab_set = browser.find_element(By.CSS_SELECTOR, ".tabbed-set")
    labels = tab_set.find_elements(By.CSS_SELECTOR, ".tabbed-labels > label")
    panels = tab_set.find_elements(By.CSS_SELECTOR, ".tabbed-content > .tabbed-block")
    assert len(labels) == len(panels) >= 2
    assert panels[0].is_displayed() and not panels[1].is_displayed()

    first_columns = panels[0].find_elements(By.CSS_SELECTOR, ".llmx-generate > .llmx-model")
    assert len(first_columns) == 4  # base, base:tuned-format (the template held constant), tuned, instruct
    rects = [c.rect for c in first_columns]
    # four columns sit two by two in Material's content column at 1400 px (the CSS's .llmx-cols-4): each row's pair
    # side by side, the second row wholly below the first, nothing overlapping
    for left, right in (rects[0:2], rects[2:4]):
        assert left["y"] == right["y"] and left["x"] + left["width"] <= right["x"], (
            f"the columns are not side by side, two by two, at 1400 px: {rects}"
        )
    assert rects[0]["y"] + max(rects[0]["height"], rects[1]["height"]) <= rects[2]["y"], (
        f"the second row of columns overlaps the first: {rects}"
    )

    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", labels[1])
    labels[1].click()
    WebDriverWait(browser, WAIT).until(lambda d: panels[1].is_displayed())
    assert not panels[0].is_displayed()
    second = panels[1].find_elements(By.CSS_SELECTOR, ".llmx-generate .llmx-output")
    assert len(second) == 4 and all(o.is_displayed() and o.text.strip() for o in second)


def test_the_palette_toggle_switches_to_dark_mode(browser, served):
    site, base = served
    _open_fresh(browser, f"{base}side-by-side/")
    scheme = "return document.body.getAttribute('data-md-color-scheme')"
    assert browser.execute_script(scheme) == "default"
    toggle = next(
        label
        for label in browser.find_elements(By.CSS_SELECTOR, "form[data-md-component=palette] label")
        if label.is_displayed()
    )
    toggle.click()
    WebDriverWait(browser, WAIT).until(lambda d: d.execute_script(scheme) == "slate")
    shots = site.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    _screenshot(browser, shots / "side-by-side-dark.png")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], f"console errors after switching palettes: {errors}"


def test_search_finds_a_page_by_its_content(browser, served):
    _, base = served
    _open_fresh(browser, base)
    box = browser.find_element(By.CSS_SELECTOR, "input.md-search__input")  # in the header at this width
    box.click()
    box.send_keys("chat template")
    WebDriverWait(browser, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".md-search-result__item a[href]"))
    hits = {
        urlsplit(a.get_attribute("href"))._replace(query="", fragment="").geturl()  # drop ?h=… highlights
        for a in browser.find_elements(By.CSS_SELECTOR, ".md-search-result__item a[href]")
    }
    assert f"{base}instruct-models/" in hits, sorted(hits)


def _check_tooltip(driver) -> tuple[str, str, str]:
    """Focus the first checked-claim mark (as a keyboard user would) and read what its ::after shows."""
    mark = driver.find_element(By.CSS_SELECTOR, ".llmx-claim-true .llmx-check")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus()", mark)
    after = driver.execute_script(
        "const s = getComputedStyle(arguments[0], '::after');return [s.content, s.backgroundColor, s.color]", mark
    )
    return tuple(after)  # type: ignore[return-value]


def test_a_checked_claim_reveals_its_check_on_focus_in_both_palettes(browser, served):
    site, base = served
    _open_fresh(browser, base)
    content, background, _ = _check_tooltip(browser)
    assert "Checked against the recorded output when this site was built" in content
    light = background
    browser.execute_script("document.body.setAttribute('data-md-color-scheme', 'slate')")
    content, background, _ = _check_tooltip(browser)
    assert "Checked against the recorded output" in content
    assert background != light  # the dark palette's own background, not a white box
    rgb = [int(v) for v in background[background.index("(") + 1 : background.index(")")].split(",")[:3]]
    assert sum(rgb) / 3 < 100, background
    _screenshot(browser, site.parent / "screenshots" / "claim-dark.png")


def test_a_checked_claim_reveals_its_check_with_javascript_off(tmp_path, served):
    """A second browser whose pages may not run scripts: the mark is a link and its check shows by CSS alone."""
    site, base = served
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--window-size=1200,900",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(base)
        assert driver.find_element(By.TAG_NAME, "body").get_attribute("class") is not None
        mark = driver.find_element(By.CSS_SELECTOR, ".llmx-claim-true .llmx-check")
        assert mark.get_attribute("href").startswith(base) and "#llmx-" in mark.get_attribute("href")
        webdriver.ActionChains(driver).move_to_element(mark).perform()
        shots = site.parent / "screenshots"
        shots.mkdir(exist_ok=True)
        mark.screenshot(str(shots / "claim-no-js-mark.png"))
        _screenshot(driver, shots / "claim-no-js.png")
        content = driver.execute_script("return getComputedStyle(arguments[0], '::after').content", mark)
        assert "Checked against the recorded output" in content
    finally:
        driver.quit()
