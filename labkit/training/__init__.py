"""Training, shared by every lab: the loop (`fit`), its recipe, runs and their settings digest,
checkpoints, DDP, memory of a step, accuracy, and small helpers around a model's mode and device.
"""
