"""Steps in JupyterLab's page that the browser tests share (Playwright's sync API)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "browser"  # screenshots of each widget state
IDLE = ".jp-Notebook-ExecutionIndicator[data-status='idle']"


def artifact(name: str) -> Path:
    """Where a test keeps a screenshot: build/browser/<name>."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def wait_for_kernel(page, timeout_ms: int = 60_000) -> None:
    """The open notebook's kernel exists and is idle: its Run commands run cells.

    While the notebook loads, its execution indicator reads idle for a moment before the kernel
    exists (the toolbar then names "No Kernel"); Run All Cells given then runs nothing, silently
    (JupyterLab clears the prompts). So the toolbar must also name the kernel.
    """
    page.wait_for_function(
        """() => {
            const toolbar = document.querySelector('.jp-NotebookPanel-toolbar');
            const status = toolbar?.querySelector('.jp-Notebook-ExecutionIndicator');
            const name = toolbar?.querySelector('.jp-Toolbar-kernelName')?.textContent.trim();
            return status?.dataset.status === 'idle' && !!name && name !== 'No Kernel';
        }""",
        timeout=timeout_ms,
    )


def run_menu(page, item: str) -> None:
    """Click Run > `item` in JupyterLab's menu bar."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def save_notebook(page, timeout_ms: int = 30_000) -> None:
    """File > Save Notebook, then wait until the notebook's tab no longer shows unsaved changes
    (a reload right after the shortcut can race the save and reopen the old file)."""
    page.locator(".lm-MenuBar-itemLabel", has_text="File").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Save Notebook").first.click()
    page.wait_for_selector(
        ".lm-TabBar-tab.jp-mod-current.jp-mod-dirty", state="detached", timeout=timeout_ms
    )


def wait_until_done(page, timeout_ms: int) -> None:
    """No cell pending or running ([*]) and the kernel idle."""
    page.wait_for_function(
        "() => ![...document.querySelectorAll('.jp-InputPrompt')]"
        ".some(p => p.textContent.includes('*'))",
        timeout=timeout_ms,
    )
    page.wait_for_selector(IDLE, timeout=timeout_ms)


def error_outputs(page) -> list[str]:
    """The text of every error output (a traceback) shown in the notebook."""
    return page.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
        has_text="Traceback",
    ).all_inner_texts()
