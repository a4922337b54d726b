from typing import ClassVar

import pytest

from hier.plugins import hookimpl
from hier.runs.config import DEFAULTS, changed_keys, head_defaults, parse_set, resolve_config
from hier.taxo import InputError


def test_layers_apply_in_order(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("head: classifier\nlr: 0.01\nepochs: 7\nhead_options: {bias: false}\n")
    config = resolve_config(config_file=f, flags={"epochs": 3, "batch_size": None}, sets=["lr=0.5"])
    assert config["head"] == "classifier" and config["loss"] == head_defaults("classifier")["loss"]
    assert config["epochs"] == 3  # flag beats file
    assert config["lr"] == 0.5  # --set beats all
    assert config["batch_size"] == DEFAULTS["batch_size"]  # unset flag keeps the default
    assert config["head_options"] == {**head_defaults("classifier")["head_options"], "bias": False}


def test_each_builtin_head_has_a_default_config():
    from hier.plugins import list_heads

    for head in list_heads():
        defaults = head_defaults(head)
        assert defaults.get("head", head) == head and defaults["loss"]
        assert resolve_config(flags={"head": head})["head_options"] == defaults["head_options"]


def test_parse_set_reads_yaml_scalars_and_dotted_keys():
    assert parse_set(["lr=1e-3", "augment=false", "head_options.margin=0.3", "backbone=resnet18"]) == {
        "lr": 1e-3, "augment": False, "head_options": {"margin": 0.3}, "backbone": "resnet18"}


@pytest.mark.parametrize("content, message", [
    ("lr: fast\n", "'lr' must be float, got 'fast'"),
    ("epochs: 2.5\n", "'epochs' must be int"),
    ("augment: 1\n", "'augment' must be bool"),
    ("learning_rate: 0.1\n", "unknown config key 'learning_rate'"),
    ("epoch: 3\n", "did you mean 'epochs'"),
    ("optimizer: adam\n", "'optimizer' must be one of adamw, sgd"),
    ("long_tail: balanced\n", "'long_tail' must be one of none, logit_adjust"),
    ("long_tail_tau: 0\n", "'long_tail_tau' must be above 0"),
    ("prior: 3\n", "'prior' must be str"),
    ("head_options: 3\n", "'head_options' must be a mapping"),
    ("- a\n- b\n", "must be a mapping of key: value"),
    ("lr: [\n", "not valid YAML"),
])
def test_config_file_errors_name_the_file_and_key(tmp_path, content, message):
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    with pytest.raises(InputError, match=message) as e:
        resolve_config(config_file=f)
    assert "bad.yaml" in str(e.value)


def test_set_errors():
    with pytest.raises(InputError, match="key=value"):
        resolve_config(sets=["lr"])
    with pytest.raises(InputError, match="unknown config key 'lrr'"):
        resolve_config(sets=["lrr=1"])


def test_changed_keys():
    a = resolve_config()
    b = resolve_config(flags={"epochs": 99, "lr": 0.5})
    assert changed_keys(a, b) == ["epochs", "lr"]


class _PluginHead:
    """A registered head factory that ships its default config, as a plugin's head does."""

    default_config: ClassVar[dict] = {"head_options": {"width": 3}, "loss": "bce", "lr": 0.05}

    def __init__(self, *, in_features, taxonomy, width=1):
        pass


class _Plugin:
    @staticmethod
    @hookimpl
    def register_heads(register):
        register("plugin-head", _PluginHead)
        register("wrong-head", type("Wrong", (), {"default_config": {"head": "classifier"}}))


def test_a_plugin_heads_default_config_comes_between_the_defaults_and_the_user(hier_plugin):
    hier_plugin(_Plugin())
    assert head_defaults("plugin-head") == _PluginHead.default_config
    config = resolve_config(flags={"head": "plugin-head"}, sets=["head_options.width=5"])
    assert (config["loss"], config["lr"], config["head_options"]) == ("bce", 0.05, {"width": 5})
    assert _PluginHead.default_config["head_options"] == {"width": 3}  # a copy was merged, not the class's dict
    with pytest.raises(InputError, match="wrong-head head's default config must be .* whose 'head', if given"):
        resolve_config(flags={"head": "wrong-head"})
