"""A real browser: headless Chromium (Debian's), driven by Playwright, uses the dashboard.

Skipped, loudly, only when Chromium or Playwright is not installed (.ci/run installs both).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _audited_page(browser, app_server, height: int):
    """A page on which an example digit has been audited (the verdict is shown)."""
    digit = sorted((ROOT / "assets" / "examples").glob("digit-*.png"))[0]
    page = browser.new_page(viewport={"width": 1400, "height": height}, accept_downloads=True)
    page.goto(app_server)
    page.wait_for_selector("#run-audit", timeout=60_000)
    page.locator("#input-image input[type=file]").set_input_files(str(digit))
    page.wait_for_timeout(1000)
    page.click("#run-audit")
    page.wait_for_function(
        "document.querySelector('#verdict') && document.querySelector('#verdict').innerText.includes('eps =')",
        timeout=120_000,
    )
    return page


def test_audit_in_a_real_browser(browser, app_server, tmp_path):
    page = _audited_page(browser, app_server, height=1800)
    verdict = page.inner_text("#verdict")
    assert "recognisable" in verdict.lower()
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=60_000
    )
    imgs = page.locator("img[src*='/gradio_api/file=']")
    assert imgs.count() >= 3  # original, privatized, reconstruction, ladder
    page.screenshot(path=str(tmp_path / "after-audit.png"), full_page=True)

    # type a budget into the box beside the slider: eps itself (the slider is log-scale)
    box = page.locator("#budget-value input")
    box.fill("1000")
    box.press("Enter")
    page.wait_for_function(
        "document.querySelector('#verdict').innerText.includes('eps = 1000 ')", timeout=60_000
    )
    assert "eps = 1000" in page.inner_text("#budget-readout")

    # drag the slider fast, back and forth, while exact budgets are computed: no error
    track = page.locator("#budget-slider input[type=range]").bounding_box()
    y = track["y"] + track["height"] / 2
    page.mouse.move(track["x"] + 5, y)
    page.mouse.down()
    for i in range(60):
        frac = (i % 20) / 19 if (i // 20) % 2 == 0 else 1 - (i % 20) / 19
        page.mouse.move(track["x"] + 5 + frac * (track["width"] - 10), y)
        page.wait_for_timeout(15)
    page.mouse.up()
    page.wait_for_function(
        "!document.querySelector('#verdict').innerText.includes('nearest ladder')", timeout=120_000
    )
    page.wait_for_timeout(1500)
    toasts = page.locator("[data-testid='toast-body']")
    assert toasts.count() == 0, toasts.all_inner_texts()
    assert "eps = 1e+05" in page.inner_text("#budget-readout")  # the drag ended at the right end
    # the exact budget of the drag's end arrives last (under load, after the others it replaced)
    page.wait_for_function(
        "document.querySelector('#verdict').innerText.includes('eps = 1e+05')"
        " && !document.querySelector('#verdict').innerText.includes('processing')",
        timeout=120_000,
    )

    with page.expect_download(timeout=60_000) as dl:
        page.click("#download-report")
    path = tmp_path / "report.html"
    dl.value.save_as(path)
    html = path.read_text()
    assert "data:image/png;base64," in html and "Budget ladder" in html and "plotly" in html
    page.screenshot(path=str(tmp_path / "after-slider.png"), full_page=True)
    page.close()


def test_find_the_largest_safe_budget_in_a_real_browser(browser, app_server, tmp_path):
    """Audit a digit, press "Find the largest safe budget": progress while it searches, then
    the sentence, the side-by-side picture and the slider at the answer."""
    page = _audited_page(browser, app_server, height=2200)
    page.click("#find-budget")
    page.wait_for_function(  # Gradio's progress on the answer's box while the search runs
        "document.querySelector('#safe-budget .progress-text, #safe-budget .eta-bar, "
        "#safe-budget .progress-level') !== null",
        timeout=60_000,
    )
    page.wait_for_function(
        "document.querySelector('#safe-budget').innerText.includes('Up to eps')", timeout=120_000
    )
    answer = page.inner_text("#safe-budget")
    assert "it is shown with 95% confidence that neither" in answer and "picks your image" in answer
    eps = float(answer.split("Up to eps = ")[1].split(" ")[0])
    page.wait_for_selector("#safe-budget-image img", timeout=60_000)
    # the slider moved to the answer, and the page shows that budget itself: one number
    page.wait_for_function(
        "!document.querySelector('#budget-readout').innerText.includes('eps = 100 ')",
        timeout=60_000,
    )
    shown = float(page.inner_text("#budget-readout").split("eps = ")[1].split(" ")[0])
    assert shown == eps, (shown, eps)
    page.wait_for_function(
        f"document.querySelector('#verdict').innerText.includes('eps = {shown:.4g}')",
        timeout=120_000,
    )
    assert "not recognisable" in page.inner_text("#verdict").lower()
    toasts = page.locator("[data-testid='toast-body']")
    assert toasts.count() == 0, toasts.all_inner_texts()
    page.screenshot(path=str(tmp_path / "after-search.png"), full_page=True)

    # a photograph next: the digit's answer and picture go as soon as it arrives, and its
    # audit says "outside the prior's domain" beside nothing of the digit
    photo = ROOT / "assets" / "examples" / "ood-cat.png"
    page.locator("#input-image input[type=file]").set_input_files(str(photo))
    page.wait_for_function(
        "!document.querySelector('#safe-budget').innerText.includes('Up to eps')", timeout=30_000
    )
    page.click("#run-audit")
    page.wait_for_function(
        "document.querySelector('#verdict').innerText.toLowerCase().includes('outside what "
        "the prior knows')",
        timeout=120_000,
    )
    assert "Up to eps" not in page.inner_text("#safe-budget")
    assert page.locator("#safe-budget-image img").count() == 0
    page.close()


def test_the_report_fits_a_1200_px_window_and_prints_to_a4(browser, tmp_path):
    """The command line's report (the dashboard's, for one audit): nothing wider than a
    1200-px window, no text overflowing its box, and Chromium prints it to an A4 PDF."""
    import numpy as np
    import torch

    from audit_engine import run_audit
    from audit_engine.outputs.report import write_report

    held = np.load(ROOT / "audit_engine" / "assets" / "prior-mnist32" / "heldout.npz")
    x = torch.from_numpy(held["images"][3]).float().div(255)[None]
    result = run_audit(x, epsilons=[1, 100], trials=2, max_trials=2, lpips=None)
    path = write_report(result, tmp_path)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(path.as_uri())
    page.wait_for_selector(".js-plotly-plot", timeout=30_000)
    wide = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert wide[0] <= wide[1], wide
    overflowing = page.evaluate(
        "Array.from(document.querySelectorAll('td, th, p, li')).filter(e => e.scrollWidth > "
        "e.clientWidth + 1).map(e => e.innerText.slice(0, 60))"
    )
    assert overflowing == [], overflowing
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") + pdf.count(b"/Type/Page") >= 1
    page.close()


def test_the_main_states_fit_and_nothing_stale_remains(browser, app_server, tmp_path):
    """scripts/screenshots.py's tour: a digit audited, eps 8 typed, the search, a photograph
    next, the report, the Data set tab and a phone; in none of them text wider than its box,
    a word broken mid-word in a table or a page scrolling sideways, and after the photograph
    nothing of the digit's search."""
    from scripts.screenshots import STATES, tour

    found = tour(app_server, tmp_path, browser)
    assert [p.stem for p in found["shots"]] == [name for name, _ in STATES]
    assert found["problems"] == [], "\n".join(found["problems"])
