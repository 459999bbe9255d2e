"""The checkpoint properties of the training component on targets of their own: plain
``torch.save``/``torch.load`` checkpoints load a flipped bit silently, a save that switches
the model to eval mode is named, and the properties need only the checkpoint pair."""

from __future__ import annotations

import pytest
import torch

from mlprop.faults.sweep import load_properties, property_outcome
from mlprop.target import load_target

PROPERTIES = load_properties()
ROUND_TRIP = "test_load_model_after_save_model_restores_weights_buffers_and_outputs"
DAMAGE = "test_a_damaged_checkpoint_does_not_load_silently"
DIGITS = load_target("mlprop.digits:target")


def _plain(save_extra=None):
    def save_model(model, path):
        if save_extra is not None:
            save_extra(model)
        torch.save(model.state_dict(), path)

    def load_model(path):
        model = DIGITS.build_model(0)
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()

    return save_model, load_model


def test_checkpoint_properties_need_only_the_checkpoint_pair():
    save_model, load_model = _plain()
    target = DIGITS.replace(train=None, trained_model=None, save_model=save_model,
                            load_model=load_model)
    assert property_outcome(PROPERTIES[ROUND_TRIP], target).status == "passed"
    without = DIGITS.replace(save_model=None, load_model=None)
    outcome = property_outcome(PROPERTIES[ROUND_TRIP], without)
    assert outcome.status == "not checked" and "Target.save_model" in outcome.message


def test_plain_torch_save_loads_a_flipped_bit_silently_and_the_message_says_the_fix():
    save_model, load_model = _plain()
    target = DIGITS.replace(save_model=save_model, load_model=load_model)
    with pytest.raises(AssertionError) as caught:
        PROPERTIES[DAMAGE](target=target)
    message = str(caught.value)
    assert "load_model loaded a bit-flipped checkpoint without an error" in message
    assert "SHA-256" in message


def test_a_save_that_switches_the_model_to_eval_mode_is_named():
    save_model, load_model = _plain(save_extra=lambda model: model.eval())
    target = DIGITS.replace(trained_model=None, save_model=save_model, load_model=load_model)
    with pytest.raises(AssertionError, match="save_model changed the model it saved"):
        PROPERTIES[ROUND_TRIP](target=target)
