"""CustomResourceDefinitions: what a CRD's schema means for the objects of its kind.

`customresource` (a CRD's served behaviour, registry kinds and JSON Schema definitions),
`definition` (defaulting and validation of CRD objects), `validator` (structural schema
validation of custom objects), `pruning` (pruning and defaulting), `cel`
(`x-kubernetes-validations`), `printer` (additionalPrinterColumns), `jsonpath` (the paths
columns and the scale subresource use). Pure: the API server wires them in
(navio/apiserver/crds.py).
"""

from navio.api.crd.customresource import (Converter, CustomResource, NoneConverter, Version,
                                          definition_name)
from navio.api.crd.definition import CLEANUP_FINALIZER

__all__ = ["CustomResource", "Version", "Converter", "NoneConverter", "definition_name",
           "CLEANUP_FINALIZER"]
