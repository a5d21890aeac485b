"""The README's screenshot of the dashboard (docs/dashboard.png): the app on the embedded
prior, an example digit audited in headless Chromium (Debian's), the page as a visitor
first reads it.

    python scripts/screenshot.py [--out docs/dashboard.png]
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bench.common import ROOT, free_port, start_app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    ap.add_argument("--example", default="digit-7-3517.png")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    proc = start_app(port)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"),
                                         args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#run-audit", timeout=60_000)
            page.locator("#input-image input[type=file]").set_input_files(
                str(ROOT / "assets" / "examples" / args.example))
            page.wait_for_timeout(1000)
            page.click("#run-audit")
            page.wait_for_function(
                "document.querySelector('#verdict') && "
                "document.querySelector('#verdict').innerText.includes('eps =')",
                timeout=180_000)
            page.wait_for_function(  # the result pictures have arrived and are decoded
                "[...document.querySelectorAll(\"img[src*='/gradio_api/file=']\")]"
                ".filter(i => i.complete && i.naturalWidth > 0).length >= 4", timeout=120_000)
            page.wait_for_timeout(2000)
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(500)
            page.screenshot(path=str(args.out), full_page=True,
                            clip={"x": 0, "y": 0, "width": 1280, "height": 1500})
            browser.close()
    finally:
        proc.kill()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
