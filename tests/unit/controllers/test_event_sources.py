"""Each controller records its Events under kube-controller-manager's source name for it
(issue 6): `job-controller`, `daemonset-controller`, ... rather than one shared name."""

from __future__ import annotations

from typing import Any

import pytest

from navio.controllers.base import ControllerContext, SharedInformers, event_source
from navio.controllers.manager import CONTROLLERS, _load_all


class Recorder:
    def __init__(self, component: str) -> None:
        self.component = component


@pytest.mark.parametrize("name,source", [
    ("replicaset", "replicaset-controller"), ("deployment", "deployment-controller"),
    ("job", "job-controller"), ("cronjob", "cronjob-controller"),
    ("daemonset", "daemonset-controller"), ("statefulset", "statefulset-controller"),
    ("nodelifecycle", "node-controller"), ("endpoint", "endpoint-controller"),
    ("endpointslice", "endpoint-slice-controller"), ("namespace", "namespace-controller"),
    ("endpointslicemirroring", "endpoint-slice-mirroring-controller"),
])
def test_every_controller_gets_a_recorder_named_as_kube_names_it(name: str,
                                                                 source: str) -> None:
    _load_all()
    made: list[str] = []

    def factory(component: str) -> Any:
        made.append(component)
        return Recorder(component)
    ctx = ControllerContext(object(), SharedInformers(object()),  # type: ignore[arg-type]
                            Recorder("controller-manager"),  # type: ignore[arg-type]
                            {}, recorder_factory=factory)
    ctl = CONTROLLERS[name](ctx)
    assert event_source(name) == source
    assert ctl.recorder.component == source          # type: ignore[attr-defined]
    assert ctx.recorder_for(source) is ctl.recorder  # made once, then shared


def test_the_taint_evictor_records_as_the_taint_eviction_controller() -> None:
    _load_all()
    ctx = ControllerContext(object(), SharedInformers(object()),  # type: ignore[arg-type]
                            Recorder("controller-manager"),  # type: ignore[arg-type]
                            {}, recorder_factory=Recorder)  # type: ignore[arg-type]
    ctl = CONTROLLERS["nodelifecycle"](ctx)
    assert ctl.evictor.recorder.component == "taint-eviction-controller"  # type: ignore[attr-defined]


def test_without_a_factory_every_controller_shares_the_context_recorder() -> None:
    _load_all()
    shared = Recorder("controller-manager")
    ctx = ControllerContext(object(), SharedInformers(object()),  # type: ignore[arg-type]
                            shared, {})  # type: ignore[arg-type]
    assert CONTROLLERS["job"](ctx).recorder is shared
