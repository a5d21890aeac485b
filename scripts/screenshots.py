"""The dashboard's main states in headless Chromium (Debian's), as a visitor meets them, with
the checks a reader would make: nothing overflowing (an element whose text is wider than
its box), no word broken mid-word in a table, no horizontal scrolling of the page, and
nothing left from an earlier image after a second one.

States: a digit audited (1400 px), a budget typed in the box (eps 8), the largest safe
budget searched, then a photograph audited (outside the prior's domain; the search's answer
must be gone), the report (1200 px), the Data set tab, and a phone (390 px).

    python -m scripts.screenshots            # docs/screens/*.jpg, docs/dashboard.png (the
                                             # README's) and docs/DASHBOARD.md's block
    python -m scripts.screenshots --out DIR  # elsewhere, docs untouched

``tests/test_browser.py`` runs the same tour (``tour``) and fails on any problem.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from audit_engine.docblocks import fill_file
from bench.common import free_port, start_app

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu"]

# (file name, caption) of each state, in the order of the tour
STATES = [
    ("audit", "A digit audited at eps 100: the verdict first, then the pictures and the plots."),
    ("slider", "eps 8 typed in the box beside the slider: the exact budget's verdict."),
    (
        "search",
        "The largest safe budget: the answer in one sentence, the answer and the "
        "first budget above it side by side.",
    ),
    (
        "photo",
        "A photograph next: outside the prior's domain, the warning alone; nothing of "
        "the digit's search remains.",
    ),
    ("report", "The downloaded report in a 1200-px window."),
    ("dataset", "The Data set tab after auditing three digits."),
    ("phone", "A digit audited on a phone (390 px)."),
]

# elements whose text is wider than their box, reported at the deepest level; scroll
# containers (overflow auto or scroll), plots, pictures and form controls excepted
OVERFLOW_JS = """() => {
  const skip = '.js-plotly-plot, svg, canvas, input, textarea, select, img, button';
  const found = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest(skip)) continue;
    const cs = getComputedStyle(el);
    // hidden, or visually hidden for screen readers only (a box of a pixel or two)
    if (cs.display === 'none' || cs.visibility === 'hidden' || el.clientWidth <= 2) continue;
    if (['auto', 'scroll'].includes(cs.overflowX)) continue;
    let inScroller = false;
    for (let p = el.parentElement; p; p = p.parentElement) {
      if (['auto', 'scroll'].includes(getComputedStyle(p).overflowX)) { inScroller = true; break; }
    }
    if (inScroller) continue;
    const text = (el.innerText || '').trim();
    if (!text) continue;
    if (el.scrollWidth > el.clientWidth + 1) found.push(el);
  }
  const deepest = found.filter(el => !found.some(o => o !== el && el.contains(o)));
  const out = deepest.map(el => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}: ` +
    `"${el.innerText.trim().slice(0, 60)}" is ${el.scrollWidth} px in ${el.clientWidth} px`);
  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth + 1)
    out.push(`the page scrolls sideways: ${page.scrollWidth} px in ${window.innerWidth} px`);
  return out;
}"""

# table cells narrower than their widest word (the browser then breaks a word mid-word), on
# a wide screen (a phone's narrow tables may break long words rather than scroll sideways)
MIDWORD_JS = """() => {
  if (window.innerWidth < 1000) return [];
  const ctx = document.createElement('canvas').getContext('2d');
  const out = [];
  for (const cell of document.querySelectorAll('td, th')) {
    if (cell.clientWidth === 0) continue;
    const cs = getComputedStyle(cell);
    ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    const room = cell.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    for (const word of (cell.innerText || '').split(/\\s+/)) {
      if (word && ctx.measureText(word).width > room + 1) {
        out.push(`"${word}" (${Math.round(ctx.measureText(word).width)} px) broken in a ` +
                 `${Math.round(room)}-px cell`);
        break;
      }
    }
  }
  return out;
}"""


def _settled(page) -> None:
    page.wait_for_timeout(800)
    page.wait_for_function(
        "document.querySelectorAll('.progress-text, .eta-bar').length === 0", timeout=300_000
    )


def _check(page, state: str, problems: list[str]) -> None:
    problems += [f"{state}: {p}" for p in page.evaluate(OVERFLOW_JS)]
    problems += [f"{state}: {p}" for p in page.evaluate(MIDWORD_JS)]


def _shot(page, out: Path, state: str, problems: list[str], shots: list[Path]) -> None:
    _check(page, state, problems)
    path = out / f"{state}.jpg"
    page.screenshot(path=str(path), full_page=True, type="jpeg", quality=60)
    shots.append(path)


def _audit(page, url: str, image: Path, *, expect: str = "eps =") -> None:
    page.goto(url)
    page.wait_for_selector("#run-audit", timeout=60_000)
    _upload_and_run(page, image, expect=expect)


def _upload_and_run(page, image: Path, *, expect: str = "eps =") -> None:
    page.locator("#input-image input[type=file]").set_input_files(str(image))
    page.wait_for_timeout(1000)
    page.click("#run-audit")
    page.wait_for_function(
        f"document.querySelector('#verdict') && document.querySelector('#verdict')"
        f".innerText.includes({expect!r})",
        timeout=180_000,
    )
    for y in range(0, 12000, 600):  # pictures below the fold load as they come into view
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(50)
    page.wait_for_function(
        "[...document.querySelectorAll(\"img[src*='/gradio_api/file=']\")]"
        ".filter(i => i.complete && i.naturalWidth > 0).length >= 4",
        timeout=120_000,
    )
    page.evaluate("window.scrollTo(0, 0)")
    _settled(page)


def tour(url: str, out: Path, browser) -> dict:
    """Walk the main states on the server at ``url``, screenshots into ``out``: {"shots",
    "problems"} (every overflow, mid-word break, sideways scroll or stale answer found)."""
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    shots: list[Path] = []
    digit = EXAMPLES / "digit-7-3517.png"
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    _audit(page, url, digit)
    _shot(page, out, "audit", problems, shots)

    box = page.locator("#budget-value input")
    box.fill("8")
    box.press("Enter")
    page.wait_for_function(
        "document.querySelector('#verdict').innerText.includes('eps = 8 ')"
        " && !document.querySelector('#verdict').innerText.includes("
        "'nearest ladder')",
        timeout=180_000,
    )
    _settled(page)
    _shot(page, out, "slider", problems, shots)

    page.click("#find-budget")
    page.wait_for_function(
        "/Up to eps|No budget|not shown even/.test("
        "document.querySelector('#safe-budget').innerText)",
        timeout=300_000,
    )
    _settled(page)
    _shot(page, out, "search", problems, shots)

    with page.expect_download(timeout=120_000) as dl:
        page.click("#download-report")
    report = out / "report.html"
    dl.value.save_as(report)

    _upload_and_run(page, EXAMPLES / "ood-cat.png", expect="outside")
    left = page.evaluate("""() => ({
        search: document.querySelector('#safe-budget').innerText.trim(),
        picture: !!document.querySelector('#safe-budget-image img'),
        verdict: document.querySelector('#verdict').innerText})""")
    if left["search"]:
        problems.append(f"photo: the digit's search answer remains: {left['search'][:80]!r}")
    if left["picture"]:
        problems.append("photo: the digit's search picture remains")
    if "Up to eps" in left["verdict"] or "digit class" in left["verdict"]:
        problems.append("photo: the verdict speaks of the digit")
    _shot(page, out, "photo", problems, shots)
    page.close()

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(report.as_uri())
    page.wait_for_timeout(1500)
    _shot(page, out, "report", problems, shots)
    page.close()

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#run-audit", timeout=60_000)
    page.get_by_role("tab", name="Data set").click()
    page.wait_for_selector("#run-dataset", state="visible", timeout=30_000)
    page.locator("input[type=file]").last.set_input_files(  # the tab's upload button
        [str(EXAMPLES / n) for n in ("digit-0-0.png", "digit-3-1543.png", "digit-9-4500.png")]
    )
    page.wait_for_function("document.body.innerText.includes('3 images chosen')", timeout=30_000)
    page.click("#run-dataset")
    page.wait_for_function(
        "document.querySelector('#dataset-summary').innerText.includes('images audited')",
        timeout=300_000,
    )
    _settled(page)
    _shot(page, out, "dataset", problems, shots)
    page.close()

    page = browser.new_page(
        viewport={"width": 390, "height": 844}, is_mobile=True, device_scale_factor=1
    )
    _audit(page, url, digit)
    _shot(page, out, "phone", problems, shots)
    page.close()
    return {"shots": shots, "problems": problems, "report": report}


def block(shots: list[Path]) -> str:
    """DASHBOARD.md's generated block: each state's picture and caption."""
    captions = dict(STATES)
    return "\n\n".join(
        f"**{p.stem}**: {captions[p.stem]}\n\n![{captions[p.stem]}](screens/{p.name})"
        for p in shots
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the pictures (default docs/screens, and the doc's block)",
    )
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    out = args.out or ROOT / "docs" / "screens"
    port = free_port()
    proc = start_app(port)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
            found = tour(f"http://127.0.0.1:{port}/", out, browser)
            browser.close()
    finally:
        proc.kill()
    if args.out is None:
        found["report"].unlink()  # 5 MB of pictures: not for the docs
    for p in found["problems"]:
        print("PROBLEM", p)
    if args.out is None:  # the README's picture: the audited digit as a visitor first sees it
        from PIL import Image

        with Image.open(out / "audit.jpg") as im:
            im.crop((0, 0, 1400, min(im.height, 1500))).save(
                ROOT / "docs" / "dashboard.png", optimize=True
            )
        fill_file(ROOT / "docs" / "DASHBOARD.md", {"screens": block(found["shots"])}, every=False)
    print(f"{len(found['shots'])} states in {out}; {len(found['problems'])} problems")
    return 1 if found["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
