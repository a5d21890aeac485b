"""Accessibility in a real browser: axe-core (WCAG 2.0 / 2.1, levels A and AA) on the page
before and after an audit and on the HTML report, a keyboard-only run of the workflow, and
screenshots at phone width and at 200% zoom (kept under ``A11Y_ARTEFACTS``, default the
test's temporary folder).

axe-core comes from the npm registry (.ci/run: ``npm install --prefix .a11y
axe-core@4.14.1``); the tests are skipped, loudly, without it, as without Chromium.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import skip_loudly

ROOT = Path(__file__).resolve().parent.parent
AXE_VERSION = "4.14.1"
AXE = Path(
    os.environ.get("AXE_CORE_JS", ROOT / ".a11y" / "node_modules" / "axe-core" / "axe.min.js")
)
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
VERDICT_SHOWN = (
    "document.querySelector('#verdict') && "
    "document.querySelector('#verdict').innerText.includes('eps =')"
)


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        skip_loudly(
            f"axe-core is not installed at {AXE} (npm install --prefix .a11y "
            f"axe-core@{AXE_VERSION})"
        )
    return AXE.read_text()


@pytest.fixture()
def artefacts(tmp_path) -> Path:
    folder = Path(os.environ.get("A11Y_ARTEFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def violations(page, axe_source: str) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source)
    assert page.evaluate("axe.version") == AXE_VERSION
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
    )
    return [
        f"{v['id']} ({v['impact']}, {len(v['nodes'])}x): {v['nodes'][0]['html'][:160]}"
        for v in result["violations"]
    ]


def _audit_with_mouse(page):
    digit = sorted((ROOT / "assets" / "examples").glob("digit-*.png"))[0]
    page.locator("#input-image input[type=file]").set_input_files(str(digit))
    page.wait_for_timeout(800)
    page.click("#run-audit")
    page.wait_for_function(VERDICT_SHOWN, timeout=120_000)
    # Gradio loads result images lazily: a reader scrolls down to them, and so does the test
    page.locator("#reconstructions").scroll_into_view_if_needed()
    page.wait_for_selector("#reconstructions img", timeout=60_000)
    page.wait_for_timeout(1500)  # the alt texts and plots follow the verdict


def test_axe_finds_no_wcag_violation_before_and_after_an_audit_and_in_the_report(
    browser, app_server, axe_source, artefacts
):
    page = browser.new_page(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
    page.goto(app_server)
    page.wait_for_selector("#run-audit", timeout=60_000)
    page.wait_for_timeout(1000)
    assert violations(page, axe_source) == []
    _audit_with_mouse(page)
    assert violations(page, axe_source) == []
    # the result images carry the finding, not "image"
    alt = page.get_attribute("#reconstructions img", "alt")
    assert "reconstructions at eps" in alt and "verdict:" in alt
    # the budget search's answer: text, and a picture whose alt text carries it
    page.click("#find-budget")
    page.wait_for_function(
        "document.querySelector('#safe-budget').innerText.includes('Up to eps')", timeout=120_000
    )
    page.wait_for_selector("#safe-budget-image img", timeout=60_000)
    # the slider moved to the answer: wait until the main view's exact budget is shown and
    # no progress indicator is left on the page
    page.wait_for_function(
        "!document.querySelector('#verdict').innerText.includes('being computed')"
        " && !document.querySelector('.progress-text, .eta-bar')",
        timeout=120_000,
    )
    page.wait_for_timeout(1500)
    assert violations(page, axe_source) == []
    assert "the answer" in page.get_attribute("#safe-budget-image img", "alt")
    with page.expect_download(timeout=60_000) as dl:
        page.click("#download-report")
    report = artefacts / "report.html"
    dl.value.save_as(report)
    page.close()

    rpage = browser.new_page()
    rpage.goto(report.as_uri())
    assert rpage.evaluate("document.documentElement.lang") == "en"
    assert violations(rpage, axe_source) == []
    assert rpage.locator("th[scope]").count() > 5
    assert all(a for a in rpage.eval_on_selector_all("img", "els => els.map(e => e.alt)"))
    rpage.close()


def _tab_to(page, test_js: str, limit: int = 150) -> None:
    """Press Tab until the focused element passes ``test_js`` (a function of the element)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"({test_js})(document.activeElement)"):
            return
    raise AssertionError(f"Tab never reached an element where {test_js}")


def _focus_visible(page) -> bool:
    """Whether the focused element (or its nearest labelled container) shows a focus ring."""
    return page.evaluate("""() => {
        let el = document.activeElement;
        for (let i = 0; el && i < 3; i++, el = el.parentElement) {
            const s = getComputedStyle(el);
            if ((s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) ||
                (s.boxShadow && s.boxShadow !== 'none')) return true;
        }
        return false; }""")


def test_the_workflow_with_the_keyboard_alone(browser, app_server, artefacts):
    """Pick an example, set the budget with the arrow keys, run, read the verdict and download
    the report: Tab, Enter and arrow keys only, with a visible focus at every stop."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    page.goto(app_server)
    page.wait_for_selector("#run-audit", timeout=60_000)
    page.wait_for_timeout(1000)
    _tab_to(page, "el => el.tagName === 'BUTTON' && el.innerText.includes('digit 3')")
    assert _focus_visible(page)
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#input-image img') !== null", timeout=30_000)
    _tab_to(page, "el => el.type === 'range'")
    assert _focus_visible(page)
    for _ in range(50):  # 50 steps of 0.01 in log10(eps): eps 100 -> 316
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "document.querySelector('#budget-readout').innerText.includes('eps = 316')", timeout=30_000
    )
    _tab_to(page, "el => el.id === 'run-audit'")
    assert _focus_visible(page)
    page.keyboard.press("Enter")
    page.wait_for_function(VERDICT_SHOWN, timeout=120_000)
    assert "eps = 316" in page.inner_text("#verdict")
    assert "recognisable" in page.inner_text("#verdict").lower()
    page.wait_for_selector("#download-report", state="visible", timeout=30_000)
    _tab_to(page, "el => el.id === 'download-report'", limit=300)
    assert _focus_visible(page)
    with page.expect_download(timeout=60_000) as dl:
        page.keyboard.press("Enter")
    dl.value.save_as(artefacts / "keyboard-report.html")
    assert "Budget ladder" in (artefacts / "keyboard-report.html").read_text()
    page.close()


def test_phone_width_and_200_percent_zoom(browser, app_server, axe_source, artefacts):
    """A 390-pixel phone and a 1280-pixel window at 200% zoom (640 CSS pixels, scale 2):
    nothing wider than the screen, the run button within the first two screens, the verdict
    right after the controls, and no axe violation; screenshots kept."""
    for name, view, scale in (
        ("phone-390", {"width": 390, "height": 844}, 3),
        ("zoom-200", {"width": 640, "height": 400}, 2),
    ):
        page = browser.new_page(viewport=view, device_scale_factor=scale)
        page.goto(app_server)
        page.wait_for_selector("#run-audit", timeout=60_000)
        page.wait_for_timeout(1000)
        assert page.evaluate("document.documentElement.scrollWidth") <= view["width"] + 1
        run_top = page.evaluate("document.querySelector('#run-audit').getBoundingClientRect().top")
        assert run_top < 2 * 844, f"{name}: the run button is {run_top:.0f} px down"
        _audit_with_mouse(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= view["width"] + 1
        verdict_top = page.evaluate(
            "document.querySelector('#verdict').getBoundingClientRect().top + window.scrollY"
        )
        assert verdict_top < run_top + 1500, f"{name}: the verdict is far below the controls"
        assert violations(page, axe_source) == []
        page.screenshot(path=str(artefacts / f"{name}.png"), full_page=True)
        page.close()


def test_the_data_set_tab_in_the_browser(browser, app_server, axe_source):
    """Choose three digits and a text file, audit them, read the summary: no violation
    before or after."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    page.goto(app_server)
    page.wait_for_selector("#run-audit", timeout=60_000)
    page.get_by_role("tab", name="Data set").click()
    page.wait_for_selector("#run-dataset", state="visible", timeout=30_000)
    found = violations(page, axe_source)
    assert found == [], "\n".join(found)
    digits = sorted((ROOT / "assets" / "examples").glob("digit-*.png"))[:3]
    page.locator("#dataset-files input[type=file], input[type=file]").last.set_input_files(
        [str(p) for p in digits]
    )
    page.wait_for_function("document.body.innerText.includes('3 images chosen')", timeout=30_000)
    page.click("#run-dataset")
    page.wait_for_function(
        "document.querySelector('#dataset-summary').innerText.includes('images audited')",
        timeout=180_000,
    )
    assert "3 images audited" in page.inner_text("#dataset-summary")
    page.wait_for_selector("#dataset-report", state="visible", timeout=30_000)
    page.wait_for_timeout(1000)
    found = violations(page, axe_source)
    assert found == [], "\n".join(found)
    with page.expect_download(timeout=60_000) as dl:
        page.click("#dataset-report")
    assert "Batch privacy audit" in Path(dl.value.path()).read_text()
    page.close()
