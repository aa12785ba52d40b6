"""Post-processing of logits: the labels and confidence of a softmax, without a full-volume softmax."""

from __future__ import annotations

import pytest
import torch

from awesomme.inference.predict import labels_and_confidence


@pytest.mark.parametrize("classes", [2, 3, 5])
@pytest.mark.parametrize("slab", [1, 2, 7])
def test_labels_and_confidence_are_softmax_argmax_and_max(classes: int, slab: int) -> None:
    generator = torch.Generator().manual_seed(classes * 10 + slab)
    logits = torch.randn(classes, 9, 17, 13, generator=generator) * 4
    logits[:, 0, 0, 0] = 1.5  # a tie goes to the first class, as argmax has it
    labels, top = labels_and_confidence(logits, slab)
    probabilities = torch.softmax(logits, dim=0)
    expected_top, expected_labels = probabilities.max(dim=0)
    assert labels.dtype == torch.uint8 and labels.shape == logits.shape[1:]
    assert torch.equal(labels, expected_labels.to(torch.uint8))
    assert torch.allclose(top, expected_top, atol=1e-6)
    assert int(labels[0, 0, 0]) == 0
