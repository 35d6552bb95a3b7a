"""``python -m generator.trial_render KIND`` < template.docx: the test render of an uploaded
template, run by the web app in a child process with CPU and memory limits.

Exit 0 when accepted; else exit 1 with {"message", "code"} (French) on stdout.
"""

from __future__ import annotations

import json
import sys

from shared.domain.templates import TemplateRejected, trial_render


def main() -> None:
    try:
        trial_render(sys.argv[1], sys.stdin.buffer.read())
    except TemplateRejected as exc:
        sys.stdout.write(json.dumps({"message": exc.message, "code": exc.code}))
        sys.exit(1)


if __name__ == "__main__":
    main()
