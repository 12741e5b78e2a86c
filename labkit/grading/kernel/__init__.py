"""Code that runs inside the student's kernel, sent there as source text by the grading worker.

Each module imports nothing from labkit (a student may have monkeypatched it): the worker reads
its file and runs it in the kernel in a namespace of its own. The worker imports the same
modules too, for the names and rules both sides must share.

- `recorder`: which functions the student's own code calls (judged by `worker.provenance`);
- `encoder`: the answers' values turned into plain data (decoded by `worker.decoder`).
"""
