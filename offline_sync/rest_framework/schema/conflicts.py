"""The schema of the conflicts API (protocol section 5): views with ``conflicts_api = "list"`` or ``"resolve"``."""

from drf_spectacular.plumbing import build_array_type, build_basic_type, build_object_type
from drf_spectacular.types import OpenApiTypes

from .components import PULL_ERRORS
from .fields import nullable


class ConflictsSchemaMixin:
    """The conflicts API's operations; methods of ``SyncAutoSchema`` (hooks.py)."""

    def conflicts_api(self):
        return getattr(self.view, "conflicts_api", None)

    def resolution_enum(self, name, values):
        """A named enum of resolutions (named here, not by spectacular's enum hook, which would name
        the branches' enums after their components)."""
        return self.shared_component(name, lambda: {"type": "string", "enum": list(values)})

    def conflicts_request(self):
        """``server`` or ``client`` without a ``record``, or ``merge`` with one; nothing else (protocol section 5)."""

        def keep():
            return build_object_type(
                description="`server`: keep the server's record. `client`: apply the client's change over it.",
                properties={"resolution": self.resolution_enum("KeepResolutionEnum", ("server", "client")).ref},
                required=["resolution"],
                additionalProperties=False,
            )

        def merge():
            return build_object_type(
                description="Apply these field values.",
                properties={
                    "resolution": self.resolution_enum("MergeResolutionEnum", ("merge",)).ref,
                    "record": {
                        **build_basic_type(OpenApiTypes.OBJECT),
                        "description": "The field values to apply, checked like a pushed `modified` record of the "
                        "conflict's entity: changed fields only, unknown fields refused (`400`).",
                    },
                },
                required=["resolution", "record"],
                additionalProperties=False,
            )

        def build():
            branches = {"KeepResolution": keep, "MergeResolution": merge}
            refs = {name: self.shared_component(name, branch).ref["$ref"] for name, branch in branches.items()}
            return {
                "oneOf": [{"$ref": ref} for ref in refs.values()],
                "discriminator": {
                    "propertyName": "resolution",
                    "mapping": {
                        "server": refs["KeepResolution"],
                        "client": refs["KeepResolution"],
                        "merge": refs["MergeResolution"],
                    },
                },
                "description": "How to resolve a conflict (protocol section 5): a `record` with `merge` only.",
            }

        return self.shared_component("Resolution", build)

    def conflicts_responses(self):
        if self.conflicts_api() == "list":

            def build():
                return build_object_type(
                    properties={"conflicts": build_array_type(self.conflict_component().ref)}, required=["conflicts"]
                )

            ok = self.shared_component("PendingConflicts", build).ref
            errors = {"not_authenticated": PULL_ERRORS["not_authenticated"]}
        else:

            def build():
                return build_object_type(
                    properties={
                        "conflict_id": build_basic_type(OpenApiTypes.INT),
                        "status": self.resolution_enum("ConflictStatusEnum", ("resolved",)).ref,
                        "resolution": self.resolution_enum("ResolutionEnum", ("server", "client", "merge")).ref,
                        "record": nullable(
                            {**build_basic_type(OpenApiTypes.OBJECT), "description": "The record now; null if deleted."}
                        ),
                    },
                    required=["conflict_id", "status", "resolution", "record"],
                )

            ok = self.shared_component("ResolvedConflict", build).ref
            errors = {
                "validation_error": "an unknown resolution, a `record` without `merge` (or `merge` without one), "
                "or a merge record with unknown fields or bad values.",
                "not_authenticated": PULL_ERRORS["not_authenticated"],
                "permission_denied": "applying the change needs the entity's change (or delete) permission.",
                "not_found": "no such conflict of yours.",
                "already_resolved": "it was resolved another way; `detail` says how.",
            }
        return {200: ok, **self.error_responses(errors)}
