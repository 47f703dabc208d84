"""Kubeflow's PyTorchJob (kubeflow.org/v1) for distributed training: the pods, Services and
PodGroup a job needs (`spec.py`), its status (`status.py`) and the controller that keeps them
(`controller.py`), gang-scheduled by navio's scheduler."""

from navio.controllers.pytorchjob.controller import PyTorchJobController
from navio.controllers.pytorchjob.spec import PODGROUPS, PYTORCHJOBS

__all__ = ["PyTorchJobController", "PYTORCHJOBS", "PODGROUPS"]
