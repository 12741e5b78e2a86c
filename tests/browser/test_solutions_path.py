"""The solutions notebooks in JupyterLab, smoke profile: Run All Cells from the Run menu leaves no
error output and no browser console error, and every widget of the lab responds to its controls."""

from __future__ import annotations

import pytest
from jlab import IDLE, artifact, error_outputs, run_menu, save_notebook, wait_until_done

pytestmark = pytest.mark.browser


def _run_all(jupyterlab, page, lab: str) -> None:
    page.goto(jupyterlab.notebook_url(f"solutions/{lab}.ipynb"))
    page.wait_for_selector(IDLE, timeout=60_000)
    run_menu(page, "Run All Cells")
    wait_until_done(page, 480_000)
    assert not error_outputs(page)
    assert not page.console_errors, page.console_errors


def test_lab02_runs_all_cells(jupyterlab, page) -> None:
    _run_all(jupyterlab, page, "02_densenet_resnext")


def test_lab03_runs_all_cells_and_its_error_browser_responds(jupyterlab, page) -> None:
    _run_all(jupyterlab, page, "03_facenet_knn")
    browser = page.locator(".widget-vbox", has=page.locator(".widget-button", has_text="Next"))
    browser.first.wait_for(timeout=30_000)
    browser = browser.first
    caption = browser.locator(".widget-html-content").first
    readout = browser.locator(".widget-readout").first
    browser.scroll_into_view_if_needed()

    def state() -> tuple[str, str]:
        return caption.inner_text(), readout.inner_text()

    first_caption, first_readout = state()
    total = int(first_caption.split(" of ")[1].split(":")[0])
    assert first_caption.startswith("error 1 of ") and first_readout == "1" and total >= 2
    browser.screenshot(path=str(artifact("03-error-browser-1.png")))
    browser.locator(".widget-button", has_text="Next").click()
    page.wait_for_function(
        "el => el.textContent.startsWith('error 2 of')", arg=caption.element_handle()
    )
    assert readout.inner_text() == "2"  # slider and caption count alike
    browser.screenshot(path=str(artifact("03-error-browser-2.png")))
    browser.locator(".widget-button", has_text="Previous").click()
    page.wait_for_function(
        "el => el.textContent.startsWith('error 1 of')", arg=caption.element_handle()
    )
    browser.locator(".widget-slider .ui-slider-handle, .widget-slider .noUi-handle").first.focus()
    page.keyboard.press("End")  # the slider by keyboard: to the last error
    page.wait_for_function(
        f"el => el.textContent.startsWith('error {total} of')", arg=caption.element_handle()
    )
    assert readout.inner_text() == str(total)
    browser.screenshot(path=str(artifact(f"03-error-browser-{total}.png")))
    assert not page.console_errors, page.console_errors
    # saved and reopened (the kernel still running): every widget output is restored
    save_notebook(page)
    page.reload()
    page.wait_for_selector(IDLE, timeout=60_000)
    page.locator(".widget-button", has_text="Next").first.wait_for(timeout=60_000)
    assert page.get_by_text("Error displaying widget").count() == 0
    assert not [e for e in page.console_errors if "model not found" in e.lower()]


def test_lab04_runs_all_cells(jupyterlab, page) -> None:
    _run_all(jupyterlab, page, "04_bcnn_hbp")
