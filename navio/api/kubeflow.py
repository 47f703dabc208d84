"""Kubeflow's PyTorchJob (kubeflow.org/v1) CustomResourceDefinition, installed at server start.

Why here: training users apply the manifests they already have; the CRD must be the training
operator's (names, printer columns, scale subresource, field names), with the pod templates'
schema generated from the same Kubernetes definitions as every built-in kind.
"""

from __future__ import annotations

import functools
from typing import Any

from navio.api.embeddedtypes import structural_schema

__all__ = ["pytorchjob_crd"]

_I32 = {"type": "integer", "format": "int32"}
_I64 = {"type": "integer", "format": "int64"}
_TIME = {"type": "string", "format": "date-time"}


def _described(text: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": text, **schema}


def _run_policy() -> dict[str, Any]:
    quantity = structural_schema("io.k8s.apimachinery.pkg.api.resource.Quantity")
    return {"type": "object", "description": "RunPolicy encapsulates various runtime policies "
            "of the distributed training job, for example how to clean up resources and how "
            "long the job can stay active.", "properties": {
                "activeDeadlineSeconds": _described(
                    "Specifies the duration in seconds relative to the startTime that the job "
                    "may be active before the system tries to terminate it; value must be "
                    "positive integer.", _I64),
                "backoffLimit": _described("Optional number of retries before marking this "
                                           "job failed.", _I32),
                "cleanPodPolicy": _described(
                    "CleanPodPolicy defines the policy to kill pods after the job completes. "
                    "Default to None.", {"type": "string", "enum": ["All", "Running", "None"]}),
                "managedBy": _described("ManagedBy is used to indicate the controller or "
                                        "entity that manages a job.", {"type": "string"}),
                "schedulingPolicy": {
                    "type": "object", "description": "SchedulingPolicy defines the policy "
                    "related to scheduling, e.g. gang-scheduling", "properties": {
                        "minAvailable": _I32,
                        "minResources": {"type": "object", "additionalProperties": quantity},
                        "priorityClass": {"type": "string"},
                        "queue": {"type": "string"},
                        "scheduleTimeoutSeconds": _I32}},
                "suspend": _described(
                    "suspend specifies whether the Job controller should create Pods or not.",
                    {"type": "boolean", "default": False}),
                "ttlSecondsAfterFinished": _described(
                    "TTLSecondsAfterFinished is the TTL to clean up jobs.", _I32)}}


def _replica_spec() -> dict[str, Any]:
    return {"type": "object", "description": "ReplicaSpec is a description of the replica",
            "properties": {
                "replicas": _described("Replicas is the desired number of replicas of the "
                                       "given template. If unspecified, defaults to 1.", _I32),
                "restartPolicy": _described(
                    "Restart policy for all replicas within the job. One of Always, "
                    "OnFailure, Never and ExitCode. Default to Never.",
                    {"type": "string", "enum": ["Always", "OnFailure", "Never", "ExitCode"]}),
                "template": _described(
                    "Template is the object that describes the pod that will be created for "
                    "this replica.", structural_schema("io.k8s.api.core.v1.PodTemplateSpec"))}}


def _status() -> dict[str, Any]:
    condition = {"type": "object", "required": ["status", "type"], "properties": {
        "lastTransitionTime": _TIME, "lastUpdateTime": _TIME, "message": {"type": "string"},
        "reason": {"type": "string"}, "status": {"type": "string"},
        "type": {"type": "string"}}}
    replica = {"type": "object", "properties": {
        "active": _I32, "failed": _I32, "succeeded": _I32, "selector": {"type": "string"},
        "labelSelector": structural_schema("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
                                           descriptions=False)}}
    return {"type": "object", "description": "Most recently observed status of the PyTorchJob.",
            "properties": {
                "completionTime": _TIME, "lastReconcileTime": _TIME, "startTime": _TIME,
                "conditions": {"type": "array", "items": condition,
                               "x-kubernetes-list-type": "atomic"},
                "replicaStatuses": {"type": "object", "additionalProperties": replica}}}


@functools.cache
def pytorchjob_crd() -> dict[str, Any]:
    """The CRD object (apiextensions.k8s.io/v1) to create or update at start."""
    spec = {"type": "object", "required": ["pytorchReplicaSpecs"], "properties": {
        "elasticPolicy": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "nprocPerNode": _described("Number of workers per node; supported values: [auto, cpu,"
                                   " gpu, int].", {"type": "string"}),
        "pytorchReplicaSpecs": _described(
            "A map of PyTorchReplicaType (type) to ReplicaSpec (value). Specifies the "
            "PyTorch cluster configuration.",
            {"type": "object", "additionalProperties": _replica_spec()}),
        "runPolicy": _run_policy()}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "pytorchjobs.kubeflow.org",
                     "labels": {"app.kubernetes.io/managed-by": "navio"}},
        "spec": {
            "group": "kubeflow.org", "scope": "Namespaced",
            "names": {"kind": "PyTorchJob", "listKind": "PyTorchJobList",
                      "plural": "pytorchjobs", "singular": "pytorchjob"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "additionalPrinterColumns": [
                    {"jsonPath": ".status.conditions[-1:].type", "name": "State",
                     "type": "string"},
                    {"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"}],
                "subresources": {"status": {}, "scale": {
                    "specReplicasPath": ".spec.pytorchReplicaSpecs.Worker.replicas",
                    "statusReplicasPath": ".status.replicaStatuses.Worker.active",
                    "labelSelectorPath": ".status.replicaStatuses.Worker.selector"}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "PyTorchJob Represents a PyTorchJob resource.",
                    "properties": {
                        "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                        "metadata": {"type": "object"}, "spec": spec,
                        "status": _status()}}}}]}}
