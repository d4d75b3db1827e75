"""The schema of the conflicts API (protocol section 5): views with ``conflicts_api = "list"`` or ``"resolve"``."""

from drf_spectacular.plumbing import build_array_type, build_basic_type, build_object_type, force_instance, get_doc
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

    def resolution_serializer(self):
        """The view's body serializer (``ResolveConflictSerializer``), as drf-spectacular finds it."""
        return force_instance(self._get_serializer())

    def conflicts_request(self):
        """The body the view's serializer takes: a resolution without a ``record``, or one of its
        ``record_resolutions`` with one; nothing else (protocol section 5)."""
        serializer = self.resolution_serializer()
        choices = serializer.fields["resolution"].choices
        with_record = [value for value in choices if value in serializer.record_resolutions]
        without_record = [value for value in choices if value not in with_record]

        def branch(name, values, **properties):
            def build():
                return build_object_type(
                    description=" ".join(f"`{value}`: {choices[value]}." for value in values),
                    properties={"resolution": self.resolution_enum(f"{name}Enum", values).ref, **properties},
                    required=["resolution", *properties],
                    additionalProperties=False,
                )

            return self.shared_component(name, build).ref["$ref"]

        def build():
            record = {**build_basic_type(OpenApiTypes.OBJECT), "description": serializer.fields["record"].help_text}
            keep = branch("KeepResolution", without_record)
            merge = branch("MergeResolution", with_record, record=record)
            return {
                "oneOf": [{"$ref": keep}, {"$ref": merge}],
                "discriminator": {
                    "propertyName": "resolution",
                    "mapping": {value: merge if value in with_record else keep for value in choices},
                },
                "description": get_doc(type(serializer)),
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
                        "resolution": self.resolution_enum(
                            "ResolutionEnum", self.resolution_serializer().fields["resolution"].choices
                        ).ref,
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
