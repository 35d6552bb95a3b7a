"""render(template, context) -> .docx bytes, with docxtpl and autoescape; no DB, no Redis."""

from __future__ import annotations

import io
from pathlib import Path

from docxtpl import DocxTemplate
from jinja2 import TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from generator.template_errors import french_message, part_label
from shared.document_variables import BUILTIN_FILES
from shared.docx_safety import UnsafeDocxError, check_docx

TEMPLATES = BUILTIN_FILES  # the built-in template of each kind (the web app lists them too)


MAX_PRODUCT = 200_000  # characters (or items) a template may build with "*"


class LimitedSandbox(SandboxedEnvironment):
    """Jinja's sandbox, plus no "**" and no huge "text * n": an uploaded template cannot
    exhaust the worker's memory that way (the job timeout bounds its loops)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "**":
            raise SecurityError("power operator not allowed in templates")
        for sized, count in ((left, right), (right, left)):
            if isinstance(sized, (str, list, tuple)) and isinstance(count, int) \
                    and len(sized) * count > MAX_PRODUCT:
                raise SecurityError("product too large")
        return super().call_binop(context, operator, left, right)


def sandbox() -> LimitedSandbox:
    return LimitedSandbox(autoescape=True)


class RenderError(Exception):
    """A deterministic template failure; ``place`` says where, for the user-facing message."""

    def __init__(self, template: str, place: str) -> None:
        super().__init__(f"template {template}: {place}")
        self.template = template
        self.place = place


def template_path(templates_dir: Path, kind: str) -> Path:
    return templates_dir / TEMPLATES[kind]


def render(source: Path | bytes, context: dict, name: str = "") -> bytes:
    """Fill one template (a file, or the bytes of an uploaded version); values are
    XML-escaped (autoescape), never evaluated. The Jinja sandbox keeps an uploaded template
    (code an administrator wrote) away from Python internals in the worker; the document
    produced is refused (RenderError) if it would fetch or link anything from elsewhere."""
    name = name or (source.name if isinstance(source, Path) else "modèle")
    template = None
    try:
        template = DocxTemplate(str(source) if isinstance(source, Path)
                                else io.BytesIO(source))
        template.render(context, jinja_env=sandbox(), autoescape=True)
        out = io.BytesIO()
        template.save(out)
    except Exception as exc:  # inputs are plain dicts: any failure here is the template's
        raise RenderError(name, failure_place(template, exc)) from None
    try:  # a rendered value must not have become a live field or link (issue 16)
        check_docx(out.getvalue(), template=False)
    except UnsafeDocxError as exc:
        raise RenderError(name, f"document produit refusé : {exc.message}") from None
    return out.getvalue()


def failure_place(template: DocxTemplate | None, exc: Exception) -> str:
    """Where a render failed and why, for the user, in French: the part of the Word file
    (« le corps du document », « l'en-tête de page ») and Jinja's message translated. Only
    Jinja's own messages are quoted: they name the template's tags, where other errors could
    quote the values being rendered."""
    part = getattr(template, "current_rendering_part", None)
    where = f"dans {part_label(str(part.partname))}" if part is not None else "dans le modèle"
    if isinstance(exc, TemplateSyntaxError):
        return f"{where}, erreur de syntaxe\u00a0: {french_message(exc.message or '')}"
    if isinstance(exc, UndefinedError):
        return f"{where}\u00a0: {french_message(str(exc))}"
    return f"{where}, erreur au remplissage ({type(exc).__name__})"


def undeclared_variables(path: Path) -> set[str]:
    """The top-level names a template uses (compared with its context builder in tests)."""
    return DocxTemplate(str(path)).get_undeclared_template_variables()
