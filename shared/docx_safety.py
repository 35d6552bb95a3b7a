"""What a .docx would fetch, link or run once opened, found by parsing the whole package
(issue 16): every part and relationship through an XML parser that refuses DTDs and entities,
names compared case-insensitively, Word field instructions joined as Word joins them.

The same check runs on an uploaded template and on every document the worker renders: a
value typed by a user must never become a live field or a link in a document sent out.
Standard library and defusedxml only, no docxtpl; used by the generator (the check of an
uploaded template, in its child process, and every render).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from shared.errors import DomainError
from shared.memo import DigestMemo

# Against zip bombs, whatever the archive's headers claim: what may be decompressed at most.
MAX_ENTRIES = 2000
MAX_UNCOMPRESSED = 40 * 1024 * 1024

# Fields that fetch, embed or send something elsewhere, or run code, when Word or LibreOffice
# updates them: a rendered value in their instruction would leave the département.
LINKING_FIELDS = frozenset({"INCLUDEPICTURE", "INCLUDETEXT", "INCLUDE", "HYPERLINK", "LINK",
                            "DDE", "DDEAUTO", "IMPORT", "DATABASE", "RD", "MACROBUTTON",
                            "PRINT"})
# Elements that embed or attach another document or a data source (local names, lower case).
OUTSIDE_ELEMENTS = frozenset({"attachedtemplate", "oleobject", "subdoc", "altchunk",
                              "mailmerge", "objectembed", "objectlink", "control",
                              "frameset"})
# Attributes that name a location (relationship targets, VML and SVG image sources).
LOCATION_ATTRIBUTES = frozenset({"target", "href", "src"})
_URL = re.compile(r"^\s*([a-z][a-z0-9+.-]*:|\\\\|//)", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]+")
_TEMPLATE_TAG = re.compile(r"\{[{%#]")
# Parts that are not XML: pictures and fonts only (an OLE package or a binary is refused).
_BINARY_TYPES = re.compile(r"^image/|font", re.IGNORECASE)


class UnsafeDocxError(DomainError):
    """A .docx that could fetch, link or embed something from elsewhere, or that cannot be
    read safely; ``message`` is French (no document content), ``code`` is for the audit."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def check_docx(data: bytes, *, template: bool) -> None:
    """Raise UnsafeDocxError unless every part of the package is safe to open.

    ``template``: the file is a template, where Jinja tags inside a field instruction are
    refused too (the value rendered there would become the field's instruction)."""
    for name, body in _xml_parts(data):
        digest = _SAFE_PARTS.digest(b"T" + body if template else b"D" + body)
        if _SAFE_PARTS.get(digest):
            continue
        _check_part(name, _parse(name, body), template=template)
        _SAFE_PARTS.put(digest, True)


# XML parts found safe lately: a rendered document keeps most of its template's parts as
# they are (styles alone weigh 800 kB), so only the parts the render changed are parsed.
_SAFE_PARTS: DigestMemo[bool] = DigestMemo(512)


def _xml_parts(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Every XML part and relationship of the package; other parts must be pictures or
    fonts."""
    parts = dict(_read_archive(data))
    if "[Content_Types].xml" not in parts:
        raise UnsafeDocxError("ce n'est pas un fichier Word .docx (partie [Content_Types].xml "
                              "absente).", "not_docx")
    types = content_types(parts["[Content_Types].xml"], parts)
    for name, body in parts.items():
        content_type = types.get(name.lower(), "")
        if _is_xml(name, content_type):
            yield name, body
        elif not _BINARY_TYPES.search(content_type):
            raise UnsafeDocxError(f"{name[:80]} : contenu non autorisé dans un document "
                                  f"Word (type « {content_type[:80] or 'inconnu'} »).",
                                  "external")


def _read_archive(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each entry, decompressed within MAX_UNCOMPRESSED whatever the size
    headers say; a corrupt, lying or oversized archive gives a clean refusal."""
    unreadable = UnsafeDocxError("le fichier n'est pas une archive .docx lisible (archive "
                                 "corrompue ou tailles annoncées fausses).", "not_docx")
    too_large = UnsafeDocxError("l'archive décompressée est trop volumineuse.", "size")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
            if len(infos) > MAX_ENTRIES:
                raise too_large
            seen: set[str] = set()
            budget = MAX_UNCOMPRESSED
            for info in infos:
                if info.filename.lower() in seen:  # part names are case-insensitive (OPC)
                    raise UnsafeDocxError(f"partie en double dans l'archive "
                                          f"({info.filename[:80]}).", "not_docx")
                seen.add(info.filename.lower())
                if info.file_size > budget:
                    raise too_large
                with archive.open(info) as entry:
                    body = entry.read(budget + 1)
                if len(body) > budget:
                    raise too_large
                budget -= len(body)
                yield info.filename, body
    except UnsafeDocxError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, ValueError, OSError,
            EOFError, NotImplementedError, RuntimeError):
        raise unreadable from None


def content_types(xml: bytes, names: Iterable[str]) -> dict[str, str]:
    """Content type of each part name (lower case, no leading "/"), from the package's
    [Content_Types].xml ``xml``: its Override, else the Default of its extension."""
    root = _parse("[Content_Types].xml", xml)
    defaults, overrides = {}, {}
    for element in root.iter():
        attributes = _attributes(element)
        if _local(element) == "default":
            defaults[attributes.get("extension", "").lower()] = attributes.get("contenttype",
                                                                               "")
        elif _local(element) == "override":
            overrides[attributes.get("partname", "").lstrip("/").lower()] = attributes.get(
                "contenttype", "")
    return {name.lower(): overrides.get(name.lower(),
                                        defaults.get(name.rpartition(".")[2].lower(), ""))
            for name in names}


def _is_xml(name: str, content_type: str) -> bool:
    return (name == "[Content_Types].xml" or name.lower().endswith((".xml", ".rels"))
            or content_type.lower().endswith("xml"))


def _parse(name: str, body: bytes) -> Element:
    try:
        return fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise UnsafeDocxError(f"{name[:80]} : déclaration DTD ou entité XML interdite.",
                              "external") from None
    except (ParseError, ValueError):
        raise UnsafeDocxError(f"{name[:80]} : XML invalide.", "not_docx") from None


def _local(element: Element) -> str:
    """The element's name without namespace, lower case."""
    tag = element.tag if isinstance(element.tag, str) else ""
    return tag.rpartition("}")[2].lower()


def _attributes(element: Element) -> dict[str, str]:
    """Attributes by local name, lower case (Word and LibreOffice are lenient about case)."""
    return {key.rpartition("}")[2].lower(): value for key, value in element.attrib.items()}


def _check_part(name: str, root: Element, *, template: bool) -> None:
    fields = _FieldReader(name, template=template)
    for element in root.iter():
        local, attributes = _local(element), _attributes(element)
        if local in OUTSIDE_ELEMENTS:
            raise UnsafeDocxError(f"{name[:80]} : lien ou objet externe interdit (modèle "
                                  "attaché, objet OLE, sous-document, publipostage…).",
                                  "external")
        mode = attributes.get("targetmode", "internal").strip().lower()
        if mode != "internal":
            raise UnsafeDocxError(f"{name[:80]} : relation vers une cible externe "
                                  "(TargetMode) interdite.", "external")
        for attribute in LOCATION_ATTRIBUTES & attributes.keys():
            if _URL.match(attributes[attribute]):
                raise UnsafeDocxError(f"{name[:80]} : adresse externe interdite (image ou "
                                      "lien pris ailleurs).", "external")
        fields.feed(local, element, attributes)
    fields.close()


class _FieldReader:
    """Field instructions in document order, as Word builds them: the text of every
    ``w:instrText`` between a ``w:fldChar`` begin and its separate (or end) joined without
    separator, whatever runs split it; ``w:fldSimple`` carries its own in ``w:instr``."""

    def __init__(self, part: str, *, template: bool) -> None:
        self.part = part
        self.template = template
        self.open: list[list[str] | None] = []  # per open field: its instruction, None once
        # past "separate"

    def feed(self, local: str, element: Element, attributes: dict[str, str]) -> None:
        if local == "fldchar":
            kind = attributes.get("fldchartype", "").strip().lower()
            if kind == "begin":
                self._no_nested_field()
                self.open.append([])
            elif kind == "separate" and self.open and self.open[-1] is not None:
                self._check("".join(self.open[-1]))
                self.open[-1] = None
            elif kind == "end" and self.open:
                instruction = self.open.pop()
                if instruction is not None:
                    self._check("".join(instruction))
        elif local in ("instrtext", "delinstrtext"):
            if self.open and self.open[-1] is not None:
                self.open[-1].append(element.text or "")
            else:  # outside a field: Word ignores it, but a repair could revive it
                self._check(element.text or "")
        elif local == "fldsimple":
            self._no_nested_field()
            self._check(attributes.get("instr", ""))

    def close(self) -> None:
        for instruction in self.open:  # unterminated fields
            if instruction is not None:
                self._check("".join(instruction))

    def _no_nested_field(self) -> None:
        # The result of a field inside an instruction becomes part of it when Word updates
        # it: an instruction could be built that no reading of the file shows.
        if self.open and self.open[-1] is not None:
            raise UnsafeDocxError(f"{self.part[:80]} : champ Word imbriqué dans le code d'un "
                                  "autre champ, interdit.", "external")

    def _check(self, instruction: str) -> None:
        linking = sorted({word.upper() for word in _WORD.findall(instruction)}
                         & LINKING_FIELDS)
        if linking:
            raise UnsafeDocxError(f"{self.part[:80]} : champ de liaison interdit "
                                  f"({linking[0]}) : il ferait sortir des données.",
                                  "external")
        if self.template and _TEMPLATE_TAG.search(instruction):
            raise UnsafeDocxError(f"{self.part[:80]} : balise de modèle dans le code d'un "
                                  "champ Word, interdite (le texte saisi deviendrait une "
                                  "instruction).", "unsafe")
