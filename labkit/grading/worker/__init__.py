"""A grading worker: the process that runs a student's kernel and checks the answers' values.

The grader (`labkit.grading.scheduler`) starts it and hands it one `jobs.Job` at a time; it
answers with `jobs` events. Nothing here runs inside the student's kernel: the code it sends
there is `labkit.grading.kernel`'s.

- `driver`: the worker's `main` and `Grader`, which drives one submission's kernel (steps,
  exports, checks, restarts with replay);
- `kernel_client`: one student's kernel, started under a memory limit and fed one cell at a time;
- `steps`: which cells run, in which order, and after which each question is graded;
- `decoder`: the code that exports an answer's values from the kernel, and their decoding here;
- `provenance`: the code that drives the kernel's call recorder, and the verdict on its record;
- `checks`: the solutions' checks, run here on the decoded values;
- `jobs`: the job and event records both sides of the worker's process boundary share.
"""
