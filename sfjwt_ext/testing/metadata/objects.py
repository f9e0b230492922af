"""CustomObject files of a deploy applied to the store (no HTTP): objects and fields from
``objects/<Name>.object`` XML, checked before anything is changed."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple
from xml.etree import ElementTree as ET

from ..core.jobs import child, child_text, children, local_name
from ..core.schema import SchemaError, make_field
from ..core.store import Store

__all__ = ["apply_custom_objects"]


def _field_spec(elem: ET.Element) -> Tuple[str, Dict[str, Any]]:
    """A CustomField element (``<fields>`` of a .object, or a .field file) -> (name, add_field kwargs)."""
    name = child_text(elem, "fullName") or ""
    name = name.rsplit(".", 1)[-1]   # Account.Legacy_Id__c in a CustomField file

    def flag(tag: str) -> bool:
        return (child_text(elem, tag) or "false").lower() == "true"

    spec: Dict[str, Any] = {"type": child_text(elem, "type") or ""}
    if child_text(elem, "label"):
        spec["label"] = child_text(elem, "label")
    for tag in ("length", "precision", "scale"):
        if child_text(elem, tag):
            spec[tag] = int(child_text(elem, tag) or 0)
    if str(spec["type"]).lower() == "longtextarea" and "length" not in spec:
        spec["length"] = 32768
    for tag, key in (("externalId", "external_id"), ("unique", "unique"), ("required", "required"),
                     ("caseSensitive", "case_sensitive")):
        if flag(tag):
            spec[key] = True
    if child_text(elem, "referenceTo"):
        spec["reference_to"] = child_text(elem, "referenceTo")
    if child_text(elem, "relationshipName"):
        spec["child_relationship"] = child_text(elem, "relationshipName")
    if child_text(elem, "description"):
        spec["description"] = child_text(elem, "description")
    if child_text(elem, "defaultValue"):
        default = child_text(elem, "defaultValue") or ""
        spec["default"] = default.lower() == "true" if spec["type"] == "Checkbox" else default.strip("'\"")
    values = [child_text(v, "fullName") for v in elem.iter() if local_name(v.tag) == "value"]
    if values:
        spec["values"] = [v for v in values if v]
    return name, spec



def apply_custom_objects(store: Store, files: Dict[str, bytes]) -> Optional[str]:
    """Create the custom objects and fields a deploy carries: ``objects/X.object`` (Metadata API
    format: a CustomObject and its ``<fields>``; a CustomField member ``Account.F__c`` travels in
    ``objects/Account.object``). Fields that exist already are left as they are. Returns an error
    message, or None."""
    objects: Dict[str, Tuple[ET.Element, List[ET.Element]]] = {}
    try:
        for path, content in sorted(files.items()):
            parts = path.split("/")
            if len(parts) >= 2 and parts[-2] == "objects" and parts[-1].endswith(".object"):
                root = ET.fromstring(content)
                name = parts[-1][:-len(".object")]
                objects[name] = (root, children(root, "fields"))
    except ET.ParseError as exc:
        return f"An object file is not valid XML: {exc}"
    try:
        for name, (object_root, fields) in objects.items():
            specs = dict(_field_spec(f) for f in fields)
            if not store.has_object(name):
                store.define_object(name, fields=specs, label=child_text(object_root, "label"),
                                    plural_label=child_text(object_root, "pluralLabel"),
                                    name_field_label=child_text(child(object_root, "nameField"), "label"))
                continue
            existing = {f["name"].lower() for f in store.describe(name)["fields"]}
            new = {fname: spec for fname, spec in specs.items() if fname.lower() not in existing}
            for fname, spec in new.items():
                make_field(fname, **spec)   # every field checked before the first is added
            for fname, spec in new.items():
                store.add_field(name, fname, **spec)
    except (SchemaError, TypeError, ValueError) as exc:
        return f"{exc}"
    return None
