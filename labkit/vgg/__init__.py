"""Lab 01's topic: receptive fields, fully-connected layers as convolutions (dense evaluation),
multi-crop evaluation and prediction on a photo, the two compared at the paper's test scales
(`evaluation`), with their figures and the receptive-field explorer. VGG's model itself is in
`labkit.models.vgg`.
"""
