import pytest

from unihema.data.catalog import ADAPTERS
from unihema.evaluation import EVALUATORS
from unihema.modeling.heads import HEADS, weigh_losses
from unihema.registry import Registry, load_plugins


def test_register_get_and_unknown_names_listed():
    reg = Registry("widget", signature="fn(x) -> y")

    @reg.register("alpha")
    def alpha(x):
        return x + 1

    reg.register("beta", obj=lambda x: x)
    assert reg.get("alpha")(1) == 2
    assert reg.names() == ["alpha", "beta"]
    with pytest.raises(KeyError) as err:
        reg.get("alpah")
    msg = str(err.value)
    assert "unknown widget 'alpah'" in msg and "Did you mean 'alpha'" in msg
    assert "Registered: alpha, beta" in msg
    assert "fn(x) -> y" in reg.describe()


def test_duplicate_names_are_rejected():
    reg = Registry("widget")
    reg.register("a", obj=object())
    with pytest.raises(KeyError, match="already registered"):
        reg.register("a", obj=object())


def test_plugins_register_bundled_adapters():
    load_plugins()
    assert "synthetic_smear" in ADAPTERS


def test_plugin_env_var_imports_extra_module(tmp_path, monkeypatch):
    mod = tmp_path / "my_plugin_mod.py"
    mod.write_text(
        "from unihema.data.catalog import DatasetAdapter, register_adapter\n"
        "@register_adapter('my_plugin_set')\n"
        "class Mine(DatasetAdapter):\n"
        "    '''layout: nothing'''\n"
        "    tasks = ('classify',)\n"
        "    license = 'MIT'\n"
        "    citation = 'me'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("UNIHEMA_PLUGINS", "my_plugin_mod")
    try:
        assert "my_plugin_mod" in load_plugins(force=True)
        assert ADAPTERS.get("my_plugin_set").name == "my_plugin_set"
    finally:
        ADAPTERS.unregister("my_plugin_set")


def test_head_and_evaluator_registries_document_their_contract():
    assert "loss(outputs, batch)" in HEADS.signature
    assert "process(batch" in EVALUATORS.signature and "evaluate()" in EVALUATORS.signature


def test_weigh_losses_requires_a_weight_for_every_term():
    import torch

    losses = {"loss_detect_cls": torch.tensor(2.0), "loss_vqa_ce": torch.tensor(1.0)}
    out = weigh_losses(losses, {"loss_detect_cls": 0.5, "loss_vqa_ce": 2.0})
    assert out["loss_detect_cls"].item() == 1.0 and out["loss_vqa_ce"].item() == 2.0
    with pytest.raises(KeyError, match=r"no weight configured for \['loss_vqa_ce'\]"):
        weigh_losses(losses, {"loss_detect_cls": 1.0})
    with pytest.raises(KeyError, match="loss_<task>_<term>"):
        weigh_losses({"detect": torch.tensor(1.0)}, {"detect": 1.0})
