"""The solutions notebooks with an explorer (labs 01, 03 and 05) in JupyterLab, smoke profile: Run
All Cells from the Run menu leaves no error output and no browser console error, and every
widget of the lab responds to its controls.

Labs 02 and 04 hold no widget but progress bars, which lab 01 shows too, and nbval executes them
in the main suite; their Run All here cost about 40 s of a CI run that must stay under 10
minutes (it took 10 min 6 s with them at 4d0c778)."""

from __future__ import annotations

import re

import pytest
from jlab import artifact, error_outputs, run_menu, save_notebook, wait_for_kernel, wait_until_done

pytestmark = pytest.mark.browser


def _run_all(jupyterlab, page, lab: str) -> None:
    page.goto(jupyterlab.notebook_url(f"solutions/{lab}.ipynb"))
    wait_for_kernel(page)
    run_menu(page, "Run All Cells")
    wait_until_done(page, 480_000)
    assert not error_outputs(page)
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_inner_texts()
    not_run = [i for i, p in enumerate(prompts) if not re.search(r"\[\d+\]", p)]
    assert prompts and not not_run, f"code cells {not_run} of {len(prompts)} did not run"
    assert not page.console_errors, page.console_errors


def _unit_caption(layer: str, row: int, col: int, geometry: dict[str, str], side: int) -> str:
    """The explorer's caption for unit (row, col), worked out here from the layer's row of the
    table (receptive field, jump, first centre) on a side x side image: the unit's centre is the
    first centre plus (row or col) jumps, its field the receptive field around it."""
    field, jump, first = (float(geometry[k]) for k in ("receptive field", "jump", "first centre"))
    cx, cy = first + col * jump, first + row * jump
    x0, x1, y0, y1 = cx - field / 2, cx + field / 2, cy - field / 2, cy + field / 2
    seen = max(0.0, min(x1, side) - max(x0, 0)) * max(0.0, min(y1, side) - max(y0, 0))
    return (
        f"unit ({row}, {col}) of layer {layer}: centre at x {cx:g}, y {cy:g}; "
        f"field x {x0:g} to {x1:g}, y {y0:g} to {y1:g} px; {seen / field**2:.0%} of it inside "
        "the image"
    )


def test_lab01_runs_all_cells_and_its_explorer_responds(jupyterlab, page) -> None:
    from playwright.sync_api import expect

    # the explorer (controls, caption, figure, table row) is taller than the default window: a
    # taller one keeps it whole in the screenshots
    page.set_viewport_size({"width": 1400, "height": 1600})
    _run_all(jupyterlab, page, "01_vgg_receptive_fields")
    explorer = page.locator(".labkit-receptive-field")
    explorer.wait_for(timeout=30_000)
    explorer.scroll_into_view_if_needed()
    dropdown = explorer.locator(".widget-dropdown select")
    row_slider = explorer.locator(".widget-slider").filter(has=page.get_by_text("row", exact=True))
    col_slider = explorer.locator(".widget-slider").filter(has=page.get_by_text("col", exact=True))
    handle = row_slider.locator(".noUi-handle, .ui-slider-handle").first
    readout = row_slider.locator(".widget-readout")
    caption = explorer.locator(".widget-html-content").first
    details = explorer.locator(".widget-html-content table")
    picture = explorer.locator("img")
    wait = 60_000  # each control's change goes through the kernel (drawing a figure)

    def geometry(label: str) -> dict[str, str]:
        """The layer's row of the table under the figure, once it shows `label`."""
        expect(details.locator("tbody td").first).to_have_text(label, timeout=wait)
        names = details.locator("thead th").all_inner_texts()
        return dict(zip(names, details.locator("tbody td").all_inner_texts(), strict=True))

    def shows(label: str, row: int, col: int, side: int, size: int, old_src: str) -> str:
        """Caption, row readout and maximum, table and image all show unit (row, col) of
        `label` (output size x size); returns the image's new src."""
        expect(caption).to_have_text(
            _unit_caption(label, row, col, geometry(label), side), timeout=wait
        )
        expect(readout).to_have_text(str(row), timeout=wait)
        expect(col_slider.locator(".widget-readout")).to_have_text(str(col), timeout=wait)
        for slider in (row_slider, col_slider):  # noUiSlider's handle carries the range
            maximum = slider.locator(".noUi-handle").first.get_attribute("aria-valuemax")
            assert float(maximum) == size - 1, (label, maximum)
        expect(picture).not_to_have_attribute("src", old_src, timeout=wait)
        return picture.get_attribute("src")

    # the dropdown: every conv and pool with its output size, e.g. "0 (Conv2d, 64x64)"
    texts = [t.replace("\xa0", " ") for t in dropdown.locator("option").all_inner_texts()]
    options = [re.fullmatch(r"(\d+) \((Conv2d|MaxPool2d), (\d+)x\3\)", t) for t in texts]
    assert all(options) and len(options) >= 2, texts
    (first, kind, side), (last, _, last_size) = options[0].groups(), options[-1].groups()
    side, last_size = int(side), int(last_size)
    assert kind == "Conv2d" and side == 64, texts[0]  # the smoke profile's 64 px crop, kept
    sizes = [int(m.group(3)) for m in options]
    assert sizes == sorted(sizes, reverse=True) and last_size < side, texts

    # it opens on the last layer's centre unit
    centre = last_size // 2
    expect(caption).to_have_text(
        _unit_caption(last, centre, centre, geometry(last), side), timeout=wait
    )
    expect(readout).to_have_text(str(centre))
    assert float(handle.get_attribute("aria-valuemax")) == last_size - 1
    src = picture.get_attribute("src")
    assert src
    explorer.screenshot(path=str(artifact(f"01-explorer-1-layer{last}-{centre}-{centre}.png")))

    # the first conv: the sliders keep their values, their maximum becomes the image side - 1
    dropdown.select_option(index=0)
    table_row = geometry(first)
    assert table_row["kind"] == "Conv2d" and int(table_row["output size"]) == side, table_row
    assert table_row["receptive field"] == "3" and table_row["jump"] == "1", table_row
    src = shows(first, centre, centre, side, side, src)
    explorer.screenshot(path=str(artifact(f"01-explorer-2-layer{first}-{centre}-{centre}.png")))
    # the row slider by keyboard, a row down at a time, past the last layer's last row
    handle.focus()
    for row in range(centre + 1, last_size + 1):
        page.keyboard.press("ArrowRight")
        src = shows(first, row, centre, side, side, src)

    # back to the last layer: the row is clamped to its last row
    dropdown.select_option(index=len(options) - 1)
    src = shows(last, last_size - 1, centre, side, last_size, src)
    explorer.screenshot(
        path=str(artifact(f"01-explorer-3-layer{last}-{last_size - 1}-{centre}.png"))
    )

    # the first conv again, then End: the last row, a third of whose field is zero padding
    dropdown.select_option(index=0)
    src = shows(first, last_size - 1, centre, side, side, src)
    handle.focus()
    page.keyboard.press("ArrowRight")
    src = shows(first, last_size, centre, side, side, src)
    page.keyboard.press("End")
    assert not page.console_errors, page.console_errors
    shows(first, side - 1, centre, side, side, src)
    assert caption.inner_text().endswith("67% of it inside the image")
    explorer.screenshot(path=str(artifact(f"01-explorer-4-layer{first}-{side - 1}-{centre}.png")))


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
    wait_for_kernel(page)
    page.locator(".widget-button", has_text="Next").first.wait_for(timeout=60_000)
    assert page.get_by_text("Error displaying widget").count() == 0
    assert not [e for e in page.console_errors if "model not found" in e.lower()]


def test_lab05_runs_all_cells_and_its_attention_viewer_responds(jupyterlab, page) -> None:
    page.set_viewport_size({"width": 1400, "height": 1200})
    _run_all(jupyterlab, page, "05_opam")
    viewer = page.locator(".labkit-attention")
    viewer.wait_for(timeout=30_000)
    viewer.scroll_into_view_if_needed()
    caption = viewer.locator(".widget-html-content").first
    readout = viewer.locator(".widget-readout").first
    picture = viewer.locator("img")
    first = caption.inner_text()
    count = int(re.match(r"image 0 of (\d+) \(0 to \d+\): true ", first).group(1))
    assert count >= 2 and readout.inner_text() == "0", (count, readout.inner_text())
    assert re.search(r"IoU [01]\.\d\d$", first), first
    src = picture.get_attribute("src")
    viewer.screenshot(path=str(artifact("05-attention-viewer-0.png")))
    viewer.locator(".widget-button", has_text="Next").click()
    page.wait_for_function(
        "el => el.textContent.startsWith('image 1 of')", arg=caption.element_handle()
    )
    assert readout.inner_text() == "1" and picture.get_attribute("src") != src
    viewer.screenshot(path=str(artifact("05-attention-viewer-1.png")))
    viewer.locator(".widget-slider .ui-slider-handle, .widget-slider .noUi-handle").first.focus()
    page.keyboard.press("End")  # the slider by keyboard: to the last image
    page.wait_for_function(
        f"el => el.textContent.startsWith('image {count - 1} of')", arg=caption.element_handle()
    )
    assert readout.inner_text() == str(count - 1)
    viewer.locator(".widget-button", has_text="Previous").click()
    page.wait_for_function(
        f"el => el.textContent.startsWith('image {count - 2} of')", arg=caption.element_handle()
    )
    assert not page.console_errors, page.console_errors
