"""Process-wide tuning is applied by a consumer process's entry point, nowhere else."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from consumers.process_tuning import SWITCH_INTERVAL, collector_paused, tune_consumer_process


@pytest.fixture
def restored() -> Iterator[None]:
    interval, enabled = sys.getswitchinterval(), gc.isenabled()
    yield
    sys.setswitchinterval(interval)
    (gc.enable if enabled else gc.disable)()


@pytest.mark.usefixtures("restored")
def test_tuning_shortens_the_switch_interval_and_gives_the_collector_pause() -> None:
    sys.setswitchinterval(0.005)
    assert tune_consumer_process() is collector_paused
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)


@pytest.mark.usefixtures("restored")
def test_tuning_never_lengthens_a_shorter_switch_interval() -> None:
    sys.setswitchinterval(0.0001)
    tune_consumer_process()
    assert sys.getswitchinterval() == pytest.approx(0.0001)


@pytest.mark.usefixtures("restored")
def test_the_collector_is_paused_for_a_batch_only() -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()  # left as it was found
