"""What a student sees in JupyterLab: each lab's student notebook opens with its kernel idle,
shows its answer cells, runs up to the first one, and that one asks for its answer."""

from __future__ import annotations

import pytest
from jlab import artifact, error_outputs, run_menu, wait_for_kernel, wait_until_done

pytestmark = pytest.mark.browser
LABS = (
    "01_vgg_receptive_fields", "02_densenet_resnext", "03_facenet_knn", "04_bcnn_hbp", "05_opam",
)  # fmt: skip


@pytest.mark.parametrize("lab", LABS)
def test_student_notebook_opens_idle_and_runs_up_to_its_first_answer(
    jupyterlab, page, lab: str
) -> None:
    """One opening of each notebook (a kernel start each): its answer cells are shown, the
    cells above the first one run without error, and the first one asks for its answer."""
    page.goto(jupyterlab.notebook_url(f"notebooks/{lab}.ipynb"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    wait_for_kernel(page)
    answers = page.locator(".jp-Notebook .jp-Cell .jp-InputArea-editor", has_text="# Answer ")
    answers.first.wait_for(timeout=30_000)  # every cell rendered (see conftest: windowingMode)
    assert answers.count() >= 3
    first_answer = page.locator(".jp-Notebook .jp-Cell", has_text="# Answer ").first
    first_answer.locator(".jp-InputPrompt").click()  # select it (command mode)
    run_menu(page, "Run All Above Selected Cell")
    wait_until_done(page, 180_000)
    page.screenshot(path=str(artifact(f"{lab}-student-above-first-answer.png")), full_page=True)
    prompts = page.locator(".jp-Notebook .jp-Cell.jp-CodeCell .jp-InputPrompt").all_inner_texts()
    assert any("[1]" in p for p in prompts), prompts[:5]  # something ran
    assert not error_outputs(page)
    assert not page.console_errors, page.console_errors
    # the answer cell itself asks for the answer: the check above does see an error output
    first_answer.locator(".jp-InputPrompt").click()
    run_menu(page, "Run Selected Cell and All Below")
    wait_until_done(page, 180_000)
    errors = error_outputs(page)
    assert errors and "NotImplementedError" in errors[0], errors[:1]
