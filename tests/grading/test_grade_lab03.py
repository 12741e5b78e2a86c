"""Lab 03's questions graded from real submissions: full marks, a visible and a hidden failure,
and labkit's own miner handed in as the bonus answer.

Each submission runs the whole lab in the smoke profile (three short trainings), so this is one
`grade_folder` call over three notebooks, about a minute and a half on two cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import slips
from answered import answered_notebook, grade_in_smoke, with_lines

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions" / "03_facenet_knn.ipynb"
LOSS, Q3, Q4, Q5, BONUS = "q3_triplet_loss", "q3_chosen", "q4_centres", "q5_nearest", "bonus_miner"
FULL = {LOSS: 2.0, Q3: 2.0, Q4: 3.0, Q5: 3.0, BONUS: 2.0}

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("lab03")
    right = answered_notebook(SOLUTIONS)
    submissions = {
        "all_right": right,
        # visible check: the positive may be the anchor itself; and labkit's own miner under
        # the bonus question's name
        "same_image": with_lines(
            with_lines(
                right,
                Q3,
                "_chosen = chosen_triplets\n"
                "def chosen_triplets(*args):\n"
                "    rows = _chosen(*args)\n"
                "    rows[:, 1] = rows[:, 0]\n"
                "    return rows",
            ),
            BONUS,
            "from labkit.triplets.miners import batch_hard as batch_hard_triplets",
        ),
        # right on the visible example; elsewhere the first image of the class, not the nearest
        # one: a hidden check fails
        "first_not_nearest": with_lines(right, Q5, slips.FIRST_NOT_NEAREST),
    }
    return grade_in_smoke(SOLUTIONS, submissions, root, total_timeout=400)


def test_lab03_questions_are_graded_right(graded) -> None:
    book = graded.gradebook.set_index("student")
    assert (book["status"] == "ok").all(), book["status"].to_dict()
    assert book.loc["all_right", list(FULL)].to_dict() == FULL
    assert book.loc["same_image", list(FULL)].to_dict() == {**FULL, Q3: 0.0, BONUS: 0.0}
    assert book.loc["first_not_nearest", list(FULL)].to_dict() == {**FULL, Q5: 0.0}
    message = next(q.message for q in graded.result("same_image").questions if q.question == Q3)
    assert "anchor and positive must be two different images" in message
    hidden = next(
        q.message for q in graded.result("first_not_nearest").questions if q.question == Q5
    )
    assert "hidden" in hidden and "np.linalg.norm" not in hidden
    miner = next(q.message for q in graded.result("same_image").questions if q.question == BONUS)
    assert "labkit.triplets.miners" in miner
