import pytest
import torch

from autograder.checklib import describe_inputs, expect_scalar


@pytest.mark.public
@pytest.mark.points(10)
def test_tutorial_example(student, reference):
    labels = torch.tensor([0, 1])
    x = torch.tensor([[10.0, 1.0, -1.0, -20.0], [10.0, 10.0, 2.0, -10.0]])
    expect_scalar(student.cross_entropy_loss(x, labels), reference.cross_entropy_loss(x, labels).item(),
                  what="cross_entropy_loss(x, labels)", inputs=describe_inputs(x=x, labels=labels))
