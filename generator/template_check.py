"""The check of a Word template an administrator uploads, on the generator side.

Run by the web process in a child process with CPU, memory and time limits
(``python -m generator.check_template``, see ``shared.domain.templates.check_template``):
the uploaded file is parsed, and its Jinja code compiled and rendered, only there, never in
the web process, which does not even import docxtpl.

An uploaded template is Jinja code that the worker will run: besides compiling it and
comparing its variables with those of the document kind (``shared.document_variables``), the
check refuses access to internal attributes (``__class__``, ``|attr``…) and renders it once
with fictitious data in the worker's sandbox.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from collections.abc import Iterator

from docx import Document
from docx.oxml import parse_xml
from docxtpl import DocxTemplate
from jinja2 import Environment, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SecurityError

from generator.contexts import sample_context
from generator.render import failure_place, sandbox
from generator.template_errors import french_message, part_label
from shared.document_variables import VARIABLES
from shared.docx_safety import (
    MAX_ENTRIES,  # against zip bombs: what the archive may hold once decompressed
    MAX_UNCOMPRESSED,
    UnsafeDocxError,
    check_docx,
    content_types,
)
from shared.domain.templates import TemplateRejectedError, precheck

DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
FOOTNOTES = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"
HEADER_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/header"
FOOTER_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/footer"
# Core properties that docxtpl renders as templates too.
PROPERTIES = {"title": "titre", "subject": "objet", "author": "auteur",
              "comments": "commentaires", "identifier": "identifiant", "language": "langue"}

_MACRO_NAMES = re.compile(r"(^|/)(vbaProject\.bin|vbaData\.xml)$|(^|/)activeX/", re.IGNORECASE)
_MACRO_TYPES = re.compile(r"macroEnabled|vbaProject|vbaData|activeX", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")
# "_x", "a.__b", "{0.__class__}" name internals; "____" (a line to fill in by hand) does not.
_INTERNAL_NAME = re.compile(r"(^|[.\[{(])_+[A-Za-z0-9]|__[A-Za-z]")
_FORBIDDEN_ATTRIBUTES = {"format", "format_map", "mro"}  # str.format reaches attributes
_UNESCAPING_FILTERS = {"safe", "forceescape"}  # they mark a value as markup: not escaped


def check(kind: str, data: bytes) -> None:
    """Raise TemplateRejectedError unless ``data`` is a .docx the worker can fill for ``kind``."""
    precheck(kind, data)
    names, types = _archive(data)
    _no_macros(names, types)
    _docx_structure(names, types)
    _safe_package(data, template=True)
    document = _open_docx(data)
    parts = list(_jinja_parts(document))
    keys = VARIABLES[kind]
    unknown: dict[str, set[str]] = {}
    used_anywhere: set[str] = set()
    for place, source in parts:
        used = _variables(place, source)
        used_anywhere |= used
        for name in used - keys:
            unknown.setdefault(name, set()).add(place)
    if unknown:
        listed = ", ".join(f"« {name} » ({', '.join(sorted(places))})"
                           for name, places in sorted(unknown.items()))
        plural = "s" if len(unknown) > 1 else ""
        raise TemplateRejectedError(
            f"variable{plural} inconnue{plural} : {listed}. Variables disponibles pour ce "
            f"document : {', '.join(sorted(keys))}.", "variables")
    _test_render(kind, data)
    missing = _missing_mandatory(parts, used_anywhere)
    if missing:
        raise TemplateRejectedError(
            "il manque ce que porte tout document de l'instance : " + " ; ".join(missing)
            + ". Partez du modèle en service (bouton « Télécharger ») pour les garder.",
            "mandatory")


_PAGE_FIELD = re.compile(r'(?:instrText[^>]*>|instr=")\s*PAGE\b')
_PAGES_FIELD = re.compile(r'(?:instrText[^>]*>|instr=")\s*(?:NUMPAGES|SECTIONPAGES)\b')
_IMAGE = re.compile(r"<(?:a:blip|v:imagedata)\b")


def _missing_mandatory(parts: list[tuple[str, str]], used: set[str]) -> list[str]:
    """What every document must carry (DOMAIN §7) and the template lacks, in French: the
    L.262-44 mention, the date and version, page x / y, the logos."""
    xml = "".join(source for _place, source in parts)
    text = html.unescape(_TAGS.sub("", xml))
    missing = []
    if "L.262-44" not in text or "secret professionnel" not in text:
        missing.append("la mention « Document confidentiel – secret professionnel "
                       "(art. L.262-44 CASF) »")
    if not {"version", "generated_on"} <= used:
        missing.append("la date et la version du document (« {{ generated_on }} » et "
                       "« {{ version }} »)")
    if not (_PAGE_FIELD.search(xml) and _PAGES_FIELD.search(xml)):
        missing.append("la pagination « page x / y » (champs Word PAGE et NUMPAGES)")
    if not _IMAGE.search(xml):
        missing.append("les logos (images de l'en-tête)")
    return missing


def _safe_package(data: bytes, *, template: bool) -> None:
    """Refuse what Word would fetch, link or embed from elsewhere (``shared.docx_safety``)."""
    try:
        check_docx(data, template=template)
    except UnsafeDocxError as exc:
        raise TemplateRejectedError(exc.message, exc.code) from None


def _archive(data: bytes) -> tuple[list[str], dict[str, str]]:
    """The entry names of a zip archive within the limits, and their content types (lower-case
    names) from its parsed [Content_Types].xml."""
    not_docx = "ce n'est pas un fichier Word .docx ({}). Enregistrez-le depuis Word au " \
               "format « Document Word (*.docx) »."
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ENTRIES or sum(i.file_size for i in infos) > MAX_UNCOMPRESSED:
                raise TemplateRejectedError("l'archive décompressée est trop volumineuse.", "size")
            names = [info.filename for info in infos]
            types = (content_types(archive.read("[Content_Types].xml"), names)
                     if "[Content_Types].xml" in names else {})
    except TemplateRejectedError:
        raise
    except UnsafeDocxError as exc:
        raise TemplateRejectedError(exc.message, exc.code) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError,
            NotImplementedError, RuntimeError):
        raise TemplateRejectedError(not_docx.format("le fichier n'est pas une archive lisible"),
                                    "not_docx") from None
    return names, types


def _no_macros(names: list[str], types: dict[str, str]) -> None:
    found = [name for name in names if _MACRO_NAMES.search(name)]
    if found or any(_MACRO_TYPES.search(value) for value in types.values()):
        where = found[0] if found else "[Content_Types].xml"
        raise TemplateRejectedError(
            f"le fichier contient des macros ou des contrôles actifs ({where}). Enregistrez-le "
            "au format « Document Word (*.docx) », sans macros.", "macro")


def _docx_structure(names: list[str], types: dict[str, str]) -> None:
    missing = [n for n in ("[Content_Types].xml", "word/document.xml") if n not in names]
    if missing:
        raise TemplateRejectedError(
            f"ce n'est pas un fichier Word .docx (partie {missing[0]} absente).", "not_docx")
    main = types.get("word/document.xml")
    if main != DOCX_MAIN:
        shown = f"« {main[:100]} »" if main else "absent"
        raise TemplateRejectedError(
            "le document principal (word/document.xml) n'a pas le type d'un document .docx "
            f"(type {shown} ; un modèle .dotx ou un autre format n'est pas accepté).",
            "not_docx")


def _open_docx(data: bytes):
    try:
        return Document(io.BytesIO(data))
    except Exception:  # any parsing failure of a foreign file
        raise TemplateRejectedError("le fichier Word est illisible (XML invalide ou parties "
                                    "manquantes).", "not_docx") from None


def _jinja_parts(document) -> Iterator[tuple[str, str]]:
    """(place, Jinja source) for every part docxtpl renders, prepared as docxtpl does
    (one line per paragraph, so that a line number points to a paragraph)."""
    helper = DocxTemplate(io.BytesIO())  # only its XML clean-up methods are used

    def prepared(xml: str) -> str:
        return re.sub(r"<w:p([ >])", r"\n<w:p\1", helper.patch_xml(xml))

    main = document.part
    yield (str(main.partname).lstrip("/"),
           prepared(helper.xml_to_string(document.element.body)))
    for rel in main.rels.values():
        if rel.is_external or rel.reltype not in (HEADER_REL, FOOTER_REL):
            continue
        if rel.target_part.blob:
            yield (str(rel.target_part.partname).lstrip("/"),
                   prepared(helper.xml_to_string(parse_xml(rel.target_part.blob))))
    for part in main.package.iter_parts():
        if part.content_type == FOOTNOTES:
            blob = part.blob.decode("utf-8") if isinstance(part.blob, bytes) else part.blob
            yield str(part.partname).lstrip("/"), prepared(blob)
    properties = document.core_properties
    for name, label in PROPERTIES.items():
        value = getattr(properties, name, None)
        if value:
            yield f"propriétés du document ({label})", str(value)


def _variables(place: str, source: str) -> set[str]:
    """Parse one part: its undeclared variables, or TemplateRejectedError with the line."""
    try:
        tree = Environment(autoescape=True).parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateRejectedError(
            f"erreur de syntaxe dans les balises du modèle "
            f"({_where(place, source, exc.lineno)})\u00a0: "
            f"{french_message(exc.message or 'balise invalide')}.", "syntax") from None
    _no_internal_access(place, source, tree)
    return meta.find_undeclared_variables(tree)


def _where(place: str, source: str, line: int | None) -> str:
    """A place in Word's terms: the part, and the text of the paragraph (one per line)."""
    text = _line_text(source, line or 0)
    return part_label(place) + (f", au paragraphe « {text} »" if text else "")


def _line_text(source: str, line: int) -> str:
    lines = source.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    text = html.unescape(_TAGS.sub("", lines[line - 1])).strip()
    return text if len(text) <= 80 else text[:77] + "…"


def _no_internal_access(place: str, source: str, tree) -> None:
    """Refuse what could reach Python internals when the worker renders the template: names
    starting with "_" (``x.__class__``, ``x["_y"]``, ``attribute="_y"``), the ``attr``
    filter, ``str.format``, and subscripts or ``attribute=`` computed at render time (they
    could build such a name). Templates only need ``item.field``, ``item["field"]`` and
    ``list[0]``. Refuse too what turns escaping off: a typed value would become Word XML."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter, nodes.Test,
                               nodes.Const, nodes.EvalContextModifier)):
        if isinstance(node, nodes.EvalContextModifier) or (
                isinstance(node, nodes.Filter) and node.name in _UNESCAPING_FILTERS):
            raise TemplateRejectedError(
                f"balise qui désactive l'échappement interdite "
                f"({_where(place, source, node.lineno)} ; « autoescape », filtres « safe » et "
                f"« forceescape ») : le texte saisi doit "
                "rester du texte.", "unsafe")
        bad = ""
        if isinstance(node, nodes.Getattr) and (node.attr.startswith("_")
                                                or node.attr in _FORBIDDEN_ATTRIBUTES):
            bad = node.attr
        elif isinstance(node, nodes.Filter | nodes.Test) and node.name == "attr":
            bad = "attr"
        elif isinstance(node, nodes.Filter | nodes.Test) and any(
                kw.key == "attribute" and not isinstance(kw.value, nodes.Const)
                for kw in node.kwargs):
            bad = f"{node.name}(attribute=…)"
        elif isinstance(node, nodes.Getitem) and not isinstance(node.arg,
                                                                nodes.Const | nodes.Slice):
            raise TemplateRejectedError(
                f"index calculé interdit ({_where(place, source, node.lineno)}) : utilisez les "
                "champs du document (par exemple « element.nom » ou « liste[0] »).", "unsafe")
        elif isinstance(node, nodes.Const) and isinstance(node.value, str) and (
                _INTERNAL_NAME.search(node.value) or node.value == "attr"):
            bad = node.value
        if bad:
            raise TemplateRejectedError(
                f"accès interdit à un élément interne (« {bad[:40]} ») "
                f"({_where(place, source, node.lineno)}). Un modèle n'utilise que les "
                "variables du document.", "unsafe")


def _test_render(kind: str, data: bytes) -> None:
    """Fill the template with fictitious data in the worker's sandbox, as the worker will
    (this process runs under the limits the web process set: a loop cannot hang it)."""
    template = DocxTemplate(io.BytesIO(data))
    out = io.BytesIO()
    try:
        template.render(sample_context(kind), jinja_env=sandbox(), autoescape=True)
        template.save(out)
    except SecurityError:
        raise TemplateRejectedError("le rendu d'essai a tenté d'accéder à un élément interne, ce "
                                    "qui est interdit.", "unsafe") from None
    except Exception as exc:  # the sample context is valid: any failure is the template's
        raise TemplateRejectedError(f"le rendu d'essai avec des données fictives échoue "
                                    f"({failure_place(template, exc)}).", "render") from None
    try:
        Document(io.BytesIO(out.getvalue()))
    except Exception:
        raise TemplateRejectedError(
            "le document produit par le rendu d'essai est illisible "
            "(balises qui coupent la structure du document, par exemple une "
            "boucle ouverte et fermée dans deux paragraphes différents sans "
            "« {%p »).", "render") from None
    _safe_package(out.getvalue(), template=False)  # what the worker checks on every render

