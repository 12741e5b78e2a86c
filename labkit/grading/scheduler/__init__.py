"""The grader's own process: it schedules submissions onto worker processes and scores them.

- `run`: `grade_folder` and `grade_submission`, the run over a folder (time budgets from the
  solutions' own run, parallel workers, originals verified afterwards);
- `submission`: grading one submission (its notebook chosen, a scratch copy, one worker job);
- `intake`: submissions as handed in, read into memory and restored where a student's code
  touched them;
- `sandbox`: the bubblewrap command a student's kernel runs inside;
- `lab_data`: the built-in data a lab's notebook needs, asked of its lab module and written
  before sandboxed kernels start (the grader's one entry into `labkit.labs`);
- `worker_handle`: the grader's handle on one worker process (start, hand it jobs, read its
  events, kill it);
- `tally`: a worker's events turned into one submission's result.

Nothing here runs a student's code; `labkit.grading.worker` does, in another process.
"""
