"""The fault suite, small: a few SIGKILLs of collect and eval at random moments (``nox -s chaos`` runs
``tests/chaos.py --kills 20``)."""

import pytest


@pytest.mark.slow
def test_killed_collect_and_eval_resume_to_equal_digests_and_records():
    from chaos import main

    out = main(["--kills", "2", "--seed", "1"])
    assert out["collect"]["kills"] >= 2 and out["eval"]["kills"] >= 2
    assert out["collect"]["episodes_with_equal_digests"] == out["collect"]["episodes"]
    assert out["eval"]["records_lost"] == 0 and out["eval"]["records_equal"]
