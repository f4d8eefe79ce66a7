"""The run-name grammar `base+addon+...~key=value,...`, parsed in one place."""

import pytest

from specrec.runs import RunName, base_of, recipe_of, reference_of


@pytest.mark.parametrize(
    ("text", "base", "addons", "setting", "reference"),
    [
        ("bpr", "bpr", (), "", None),
        ("bpr+sr_warm", "bpr", ("sr_warm",), "", "bpr"),
        ("directau+sr_warm+unif_warm~lr=0.01", "directau", ("sr_warm", "unif_warm"), "lr=0.01", "directau"),
        ("bpr~lr=0.001,weight_decay=1e-08", "bpr", (), "lr=0.001,weight_decay=1e-08", None),
        ("none", "none", (), "", None),
    ],
)
def test_a_run_name_parses_into_its_parts_and_back(text, base, addons, setting, reference):
    name = RunName.parse(text)
    assert (name.base, name.addons, name.setting, name.reference) == (base, addons, setting, reference)
    assert str(name) == text and RunName.parse(str(name)) == name
    assert recipe_of(text) == text.partition("~")[0] and base_of(text) == base
    assert reference_of(text) == reference


def test_a_setting_is_added_to_the_recipe_not_to_its_base():
    assert str(RunName.parse("bpr+sr_warm").at("lr=0.01")) == "bpr+sr_warm~lr=0.01"
    assert str(RunName.parse("bpr~lr=0.1").at("")) == "bpr"
