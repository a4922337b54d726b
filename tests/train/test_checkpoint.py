"""last.pt holds all a resume needs; the final weights are the best epoch's."""

import torch

from hier import runs
from hier.train.checkpoint import finish, restore, save_best, save_last
from hier.train.epoch import train_epoch


def test_restore_continues_exactly_where_last_pt_left_off(tiny_state):
    state = tiny_state
    train_epoch(state, 0)
    state.history, state.best, state.epoch = [{"epoch": 1}], {"metric": "val_loss", "value": 0.5, "epoch": 1}, 1
    save_last(state)
    saved = runs.load_checkpoint(state.run_dir / runs.LAST)
    assert saved["epoch"] == 1 and saved["taxonomy_ids"] == list(state.taxonomy.ids) and saved["head"] == "classifier"
    expected = train_epoch(state, 1), {k: v.clone() for k, v in state.model.state_dict().items()}

    state.history, state.best, state.epoch = [], None, 0
    restore(state, saved)
    assert (state.history, state.best, state.epoch) == (saved["history"], saved["best"], 1)
    again = train_epoch(state, 1), state.model.state_dict()
    assert again[0] == expected[0]  # the same loss: weights, optimizer moments and schedule came back
    for key, value in expected[1].items():
        assert torch.equal(again[1][key], value), key


def test_final_weights_are_the_best_epochs(tiny_state):
    state = tiny_state
    state.best = {"metric": "val_loss", "value": 0.1, "epoch": 1}
    save_best(state)
    best = {k: v.clone() for k, v in state.model.state_dict().items()}
    train_epoch(state, 0)
    assert not torch.equal(state.model.embedding[1].weight, best["embedding.1.weight"])
    finish(state)
    from safetensors.torch import load_file

    final = load_file(str(state.run_dir / runs.WEIGHTS))
    assert final.keys() == best.keys()
    for key, value in best.items():
        assert torch.equal(final[key], value), key
