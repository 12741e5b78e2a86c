"""The instructor's side: the question protocol of a solutions notebook, and what is handed out.

- `protocol`: the nbgrader markers, the questions of a solutions notebook (`parse_solutions`),
  the forbidden and allowed calls of its hidden tests;
- `locate`: finding each question's cells again in an edited submission;
- `release`: student notebooks from the solutions, and the check that they hold no answer;
- `kit`, `kit_template/`: the student kit an instructor publishes, and its leak check;
- `reference`: `load_weights`, for checks cells that compare a student's module with a reference.
"""
