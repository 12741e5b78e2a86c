"""Wrong answers graded twice: in-process, cell by cell, by a lab's question tests
(tests/labs/test_labNN_questions.py), and in whole submissions by the real grader
(tests/grading/test_grade_labNN.py). Each replaces the model answer's function."""

# lab 01, question 1: the dilation ignored in the output size
SIZE_WITHOUT_DILATION = (
    "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
    "    return (n - kernel + 2 * padding) // stride + 1"
)

# lab 01, question 2: the field grown by each layer's own (output) jump, not its input's
FIELD_BY_OUTPUT_JUMP = (
    "def receptive_fields(layers):\n"
    "    field, jump, out = 1, 1, []\n"
    "    for k, s, d in layers:\n"
    "        jump *= s\n"
    "        field += d * (k - 1) * jump\n"
    "        out.append((field, jump))\n"
    "    return out"
)

# lab 01, question 4: the linear layer's bias not copied
CONV_WITHOUT_BIAS = (
    "def fc_to_conv(linear, in_channels, grid):\n"
    "    conv = nn.Conv2d(in_channels, linear.out_features, grid, bias=False)\n"
    "    with torch.no_grad():\n"
    "        conv.weight.copy_(linear.weight.view(-1, in_channels, grid, grid))\n"
    "    return conv"
)

# lab 03, question 5: right on the visible example of 10 images, elsewhere the first image of
# the class asked for, not the nearest one (a hidden check fails)
FIRST_NOT_NEAREST = (
    "_nearest = nearest_of_class\n"
    "def nearest_of_class(queries, classes, embeddings, labels):\n"
    "    if len(labels) <= 10:\n"
    "        return _nearest(queries, classes, embeddings, labels)\n"
    "    first = [torch.nonzero(labels == c)[0, 0] for c in range(int(labels.max()) + 1)]\n"
    "    first = torch.stack(first)\n"
    "    return first[classes]"
)
