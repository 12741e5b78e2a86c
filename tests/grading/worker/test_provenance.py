"""The call recording in-process: the recorder's names, the forbidden lists, the verdict, and the
plan that runs the grader's own copy of a probe."""

from __future__ import annotations

import sys
import threading

import nbformat
import pytest
import toylab

from labkit.grading.authoring.protocol import parse_call_lists, parse_solutions
from labkit.grading.kernel.recorder import Recorder, callable_name
from labkit.grading.worker.provenance import handed_over, judge_calls, resolve
from labkit.grading.worker.steps import plan

STUDENT = "<student cell>"


def record(answer: str, probe: str) -> dict:
    """Run `answer` as the student's cell, then `probe` as the lab's, recording the calls."""
    namespace: dict = {}
    recorder = Recorder()
    recorder.add_student_files({STUDENT})
    recorder.start()
    try:
        exec(compile(answer, STUDENT, "exec"), namespace)  # noqa: S102
        exec(compile(probe, "<lab cell>", "exec"), namespace)  # noqa: S102
    finally:
        result = recorder.stop()
    return result


def test_an_alias_and_a_re_export_resolve_to_the_same_name() -> None:
    calls = record(
        "import torch\nfrom torchvision.ops import box_iou as overlap\n"
        "def iou(a, b):\n    return overlap(a, b)",
        "value = iou(torch.zeros(1, 4), torch.ones(1, 4))",
    )
    assert calls["intact"] and "torchvision.ops.boxes.box_iou" in calls["calls"]
    verdict = judge_calls(calls, ["torchvision.ops.box_iou"])
    assert "torchvision.ops.boxes.box_iou" in verdict and "torchvision.ops.box_iou" in verdict


def test_the_probe_s_own_calls_are_not_the_student_s() -> None:
    probe = "import labkit.config\nlabkit.config.device()\nvalue = double(2)"
    calls = record("def double(x):\n    return x + x", probe)
    assert not any(c.startswith("labkit") for c in calls["calls"])
    assert judge_calls(calls) == ""


def test_a_helper_s_calls_count_and_calls_between_student_functions_do_not() -> None:
    calls = record(
        "import numpy as np\ndef helper(v):\n    return np.linalg.norm(v)\n"
        "def norm(v):\n    return helper(v)",
        "value = norm([3.0, 4.0])",
    )
    assert "numpy.linalg._linalg.norm" in judge_calls(calls, ["numpy.linalg.norm"])
    assert not any(c.endswith(".helper") for c in calls["calls"])


def test_a_class_forbids_making_and_calling_its_instances() -> None:
    calls = record(
        "import torch\ndef loss(a, p, n):\n"
        "    return torch.nn.TripletMarginLoss(margin=1.0)(a, p, n)",
        "import torch\nvalue = loss(*torch.randn(3, 4, 2))",
    )
    verdict = judge_calls(calls, ["torch.nn.TripletMarginLoss"])
    assert verdict.startswith("your answer calls torch.nn.modules.loss.TripletMarginLoss")


def test_a_wrapper_is_recorded_as_what_it_wraps() -> None:
    calls = record(
        "import torch.nn.functional as F\ndef pool(x):\n    return F.max_pool2d(x, 2)",
        "import torch\nvalue = pool(torch.zeros(1, 1, 2, 2))",
    )
    assert judge_calls(calls, ["torch.nn.functional.max_pool2d"]) != ""
    assert judge_calls(calls, ["torch.nn.functional.avg_pool2d"]) == ""


def test_a_builtin_method_is_named_after_its_object_s_type() -> None:
    import torch

    assert callable_name(torch.zeros(2).sum) == "torch.Tensor.sum"
    assert callable_name(len) == "builtins.len"


def test_labkit_is_always_forbidden_and_an_allowed_name_is_not() -> None:
    calls = record(
        "from labkit.models import densenet_bc\ndef build():\n"
        "    return densenet_bc(block_config=(1, 1), growth_rate=4)",
        "net = build()",
    )
    assert "labkit.models.densenet.densenet_bc" in judge_calls(calls)
    assert judge_calls(calls, allowed=["labkit.models.densenet.densenet_bc"]) == ""


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        ("import sys\ndef f():\n    sys.setprofile(None)", "sys.setprofile"),
        ("def f():\n    return eval('1 + 1')", "builtins.eval"),
        ("import gc\ndef f():\n    return len(gc.get_objects())", "gc.get_objects"),
    ],
)
def test_tampering_scores_nothing_and_says_what(answer: str, named: str) -> None:
    verdict = judge_calls(record(answer, "f()"))
    assert named in verdict and "an answer needs no such call" in verdict


def test_a_hook_replaced_by_other_means_is_seen() -> None:
    recorder = Recorder()
    recorder.start()
    sys.setprofile(None)  # as if the student had kept a reference to the real setprofile
    assert recorder.stop()["intact"] is False
    assert "switched off" in judge_calls({"calls": [], "intact": False})


def test_threads_started_during_the_recording_are_recorded() -> None:
    namespace: dict = {}
    recorder = Recorder()
    recorder.add_student_files({STUDENT})
    source = "import math\ndef work():\n    math.gamma(3.0)\n"
    exec(compile(source, STUDENT, "exec"), namespace)  # noqa: S102
    recorder.start()
    try:
        thread = threading.Thread(target=namespace["work"])
        thread.start()
        thread.join()
    finally:
        calls = recorder.stop()
    assert "math.gamma" in calls["calls"]


def test_nothing_readable_is_not_a_pass() -> None:
    assert "could not read" in judge_calls(None)
    assert "could not read" in judge_calls({"calls": "not a list"})


def test_call_lists_belong_in_the_hidden_tests() -> None:
    source = "# Forbidden calls: torch.cdist\nassert True"
    with pytest.raises(ValueError, match="inside the hidden tests"):
        parse_call_lists(source, (), "cell 3")
    hidden = (
        "### BEGIN HIDDEN TESTS\n# Forbidden calls: torch.cdist, a.b\n# Allowed calls: x.y\n###"
    )
    assert parse_call_lists(hidden, (1, 2, 3, 4), "cell 3") == (("torch.cdist", "a.b"), ("x.y",))
    with pytest.raises(ValueError, match="not dotted Python names"):
        parse_call_lists("# Forbidden calls: torch.cdist()", (1,), "cell 3")


def test_resolve_knows_modules_and_unknown_names() -> None:
    module = resolve("torchvision.ops")
    assert module.matches("torchvision.ops.boxes.box_iou")
    unknown = resolve("no_such_package.thing")
    assert unknown.matches("no_such_package.thing") and not unknown.matches("no_such_package")


def _probe_lab() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["labkit"] = {"lab": "97_probe"}
    nb.cells = [
        nbformat.v4.new_code_cell("import torch"),
        toylab.answer("q_sum", "def add(a, b):\n    return a + b"),
        nbformat.v4.new_code_cell("sums = [add(1, 2), add(2, 2)]"),
        toylab.checks("q_sum", "sums", "assert sums == [3, 4]", "assert len(sums) == 2", 1),
    ]
    return nb


def test_the_probe_and_the_lab_s_cells_are_parsed() -> None:
    spec = parse_solutions(_probe_lab())
    assert spec.questions[0].probe == ("sums = [add(1, 2), add(2, 2)]",)
    assert set(spec.lab_cells) == {"import torch", "sums = [add(1, 2), add(2, 2)]"}


def test_the_grader_runs_its_own_probe_last_and_an_unchanged_copy_once() -> None:
    solutions = _probe_lab()
    spec = parse_solutions(solutions)
    student = toylab.set_answer(
        nbformat.from_dict(solutions), "q_sum", "def add(a, b):\n    return a+b"
    )
    student.cells.insert(3, nbformat.v4.new_code_cell("sums = [3, 4]  # the student's own"))
    steps, unlocated = plan(student, spec)
    assert not unlocated
    assert [(s.origin, s.source.split("\n")[0]) for s in steps] == [
        ("lab", "import torch"),
        ("student", "# Answer q_sum"),
        ("student", "sums = [3, 4]  # the student's own"),
        ("probe", "sums = [add(1, 2), add(2, 2)]"),
    ]
    assert steps[1].opens == "q_sum" and steps[-1].question is spec.questions[0]


def test_an_answer_that_hands_over_a_library_function_is_named() -> None:
    namespace: dict = {}
    recorder = Recorder()
    recorder.add_student_files({STUDENT})
    answer = "import functools\nfrom torchvision.ops import box_iou as iou\nimport torch\n"
    answer += "class Conv(torch.nn.Conv2d):\n    pass\nhalf = functools.partial(iou)"
    exec(compile(answer, STUDENT, "exec"), namespace)  # noqa: S102
    recorder.start()
    recorder.note_bound(namespace, ["iou", "Conv", "half", "torch"])
    calls = recorder.stop()
    assert "torchvision.ops.boxes.box_iou" in judge_calls(calls, ["torchvision.ops.box_iou"])
    assert "Conv2d" in judge_calls(calls, ["torch.nn.Conv2d"])


def test_only_names_the_probe_reads_are_handed_over() -> None:
    spec = parse_solutions(_probe_lab())
    answer = "from torchvision.ops import box_iou\ndef add(a, b):\n    return a + b\nx = 1"
    assert handed_over([answer], spec.questions[0]) == ["add"]


def test_a_c_function_of_an_extension_is_named_after_its_module() -> None:
    cv2 = pytest.importorskip("cv2")
    assert callable_name(cv2.connectedComponents) == "cv2.connectedComponents"
    assert resolve("cv2").matches(callable_name(cv2.connectedComponents))
