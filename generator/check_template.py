"""``python -m generator.check_template KIND`` < template.docx > verdict.json: the check of an
uploaded template (``generator.template_check``), run by the web process in a child process
with CPU, memory and time limits (``shared.domain.templates.check_template``).

Prints one JSON verdict on stdout and exits 0: ``{"accepted": true}``, or
``{"accepted": false, "message": …, "code": …}`` with the French reason and its short code.
Any other outcome (killed by a limit, a crash) leaves no verdict: the web process refuses the
template then.
"""

from __future__ import annotations

import json
import sys

from generator.template_check import check
from shared.domain.templates import TemplateRejectedError


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else ""
    data = sys.stdin.buffer.read()
    try:
        check(kind, data)
    except TemplateRejectedError as exc:
        verdict = {"accepted": False, "message": exc.reason, "code": exc.code}
    except MemoryError:
        verdict = {"accepted": False, "code": "render",
                   "message": "le rendu d'essai a dépassé la mémoire autorisée."}
    else:
        verdict = {"accepted": True}
    sys.stdout.write(json.dumps(verdict))


if __name__ == "__main__":
    main()
