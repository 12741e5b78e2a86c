"""What grading found, and the files an instructor reads.

- `results`: `Status`, `Outcome`, `QuestionResult`, `SubmissionResult` (every side uses them);
- `gradebook`: `GradingRun`, the gradebook, the answers sheet and `write`;
- `feedback`: one Markdown feedback page per student, one sheet of free-text answers;
- `marks`: hand marks, the template and its validated reading back.
"""
